"""The Lauscher cochlea, vectorised, and its stages: basilar membrane, hair cell, bushy cell."""
