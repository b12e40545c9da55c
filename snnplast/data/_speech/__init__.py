"""Spoken digits from eSpeak NG, recorded through simulated rooms, made into an SHD look-alike."""
