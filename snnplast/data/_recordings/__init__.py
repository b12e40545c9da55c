"""A folder of the user's own recordings: its layouts, conversion to spikes, cached loading."""
