"""The tiny random models of the embedded default (`regionedit zoo`, docs/zoo.md): every model
the method uses, randomly initialised from configs with a fixed seed, in its library's own
format, to run every code path offline. Not the world's trained models (components/world/zoo)."""
