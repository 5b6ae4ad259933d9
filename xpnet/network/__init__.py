"""The network: layers (:mod:`.layers`), losses, the model (:class:`.model.Sequential`), the book's
networks (:mod:`.models`), numerical gradients, and the model file format (:mod:`.fileformat`, :mod:`.io`)."""
