//! Strided tensor (under construction).
