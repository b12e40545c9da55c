"""From a data name or folder to the dense, cached, speaker-split arrays the trainer reads."""
