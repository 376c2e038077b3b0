//! Token verification (being written).
