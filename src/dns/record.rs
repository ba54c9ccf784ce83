//! Resource records with uncompressed wire RDATA.

use super::name::Name;
use super::rdata;
use super::rtype;
use std::fmt;

/// One resource record. RDATA is uncompressed wire format with case preserved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub owner: Name,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    pub rdata: Vec<u8>,
}

impl Record {
    pub fn new(owner: Name, rtype: u16, ttl: u32, rdata: Vec<u8>) -> Record {
        Record {
            owner,
            rtype,
            class: rtype::class::IN,
            ttl,
            rdata,
        }
    }

    /// The type an RRSIG covers (first two octets of its RDATA).
    pub fn rrsig_covered(&self) -> Option<u16> {
        if self.rtype != rtype::t::RRSIG {
            return None;
        }
        Some(u16::from_be_bytes([
            *self.rdata.first()?,
            *self.rdata.get(1)?,
        ]))
    }

    /// Presentation text of the RDATA.
    pub fn rdata_text(&self) -> String {
        rdata::to_text(self.rtype, &self.rdata)
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\t{}\t{}\t{}\t{}",
            self.owner,
            self.ttl,
            rtype::class_name(self.class),
            rtype::type_name(self.rtype),
            self.rdata_text()
        )
    }
}
