//! The feed seam (being written).
