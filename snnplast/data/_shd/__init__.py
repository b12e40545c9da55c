"""The SHD file format: writing, checking, reading and showing it, and the synth stand-in."""
