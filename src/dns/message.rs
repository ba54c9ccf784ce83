//! DNS messages (RFC 1035 §4).
