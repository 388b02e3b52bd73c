"""Models: the paper's transformer (`transformer`), the one-layer variants of Behrens, Biggio and
Zdeborova (`behrens`), and the registry that maps `model.arch` to a class (`registry`)."""
