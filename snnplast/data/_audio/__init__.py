"""Audio clips: WAV files, sample rates, and the clips kept beside a spike file."""
