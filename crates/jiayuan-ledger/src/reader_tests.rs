//! Tests of the reader; see reader.rs.
