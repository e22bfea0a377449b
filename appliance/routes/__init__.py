"""HTTP routes, one module per API family. Routes validate, call a library, and shape the answer."""
