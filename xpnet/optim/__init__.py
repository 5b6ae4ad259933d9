"""Optimisation: the optimizers (SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam), learning-rate
schedules, and gradient clipping by global norm."""
