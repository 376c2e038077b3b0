//! Venue quotes → best bid/ask per symbol (being written).
