//! Attribute columns: what filters and categories read during a scan.
//!
//! Each row of an instance's index carries nine u32 columns: the category, IntAttr..4
//! (the i32's bits) and StrAttr..4 as ids into per-attribute string dictionaries, so that
//! a filter compares integers only. Id 0 is the empty string, which an absent StrAttr
//! counts as (an absent IntAttr counts as 0). Dictionaries only grow while the instance is
//! open; they are rebuilt from the store when it opens, or read back from the persisted
//! columns' blob ([`Dictionaries::to_bytes`]) when those are still valid.

use std::collections::HashMap;

use parking_lot::RwLock;

use crate::filter::AttributeSource;
use crate::index::Snapshot;
use crate::store::Record;

/// Column of the category id.
pub const COLUMN_CATEGORY: usize = 0;
/// First of the four IntAttr columns.
const COLUMN_INT: usize = 1;
/// First of the four StrAttr columns.
const COLUMN_STR: usize = 5;
/// Number of columns kept beside the vectors.
pub const COLUMNS: usize = 9;

/// One attribute's strings and their ids.
#[derive(Default)]
struct Dictionary {
    ids: HashMap<String, u32>,
    strings: Vec<String>,
}

/// The string dictionaries of StrAttr..StrAttr4.
pub struct Dictionaries {
    attrs: [RwLock<Dictionary>; 4],
}

impl Default for Dictionaries {
    fn default() -> Self {
        let empty = || {
            let mut d = Dictionary::default();
            d.ids.insert(String::new(), 0);
            d.strings.push(String::new());
            RwLock::new(d)
        };
        Dictionaries {
            attrs: [empty(), empty(), empty(), empty()],
        }
    }
}

impl Dictionaries {
    /// Id of `value` for attribute `attr`, adding it when new.
    pub fn intern(&self, attr: usize, value: &str) -> u32 {
        let Some(lock) = self.attrs.get(attr) else {
            return 0;
        };
        if let Some(id) = lock.read().ids.get(value) {
            return *id;
        }
        let mut d = lock.write();
        if let Some(id) = d.ids.get(value) {
            return *id;
        }
        let id = d.strings.len() as u32;
        d.strings.push(value.to_string());
        d.ids.insert(value.to_string(), id);
        id
    }

    /// Id of `value` for attribute `attr`, if any row ever had it.
    pub fn lookup(&self, attr: usize, value: &str) -> Option<u32> {
        self.attrs.get(attr)?.read().ids.get(value).copied()
    }

    /// The strings of every attribute in id order, as bytes (the persisted columns' blob):
    /// per attribute a u32 count, then per string a u32 length and its UTF-8 bytes, all
    /// little-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for lock in &self.attrs {
            let d = lock.read();
            out.extend_from_slice(&(d.strings.len() as u32).to_le_bytes());
            for s in &d.strings {
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
        out
    }

    /// Dictionaries from [`Self::to_bytes`]; `None` when the bytes are not such (the
    /// caller then rebuilds them from the store).
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let mut rest = bytes;
        let mut take = |n: usize| -> Option<&[u8]> {
            let (head, tail) = rest.split_at_checked(n)?;
            rest = tail;
            Some(head)
        };
        let mut attrs: [Dictionary; 4] = Default::default();
        for d in &mut attrs {
            let count = u32::from_le_bytes(take(4)?.try_into().ok()?);
            for id in 0..count {
                let len = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
                let s = std::str::from_utf8(take(len)?).ok()?.to_string();
                if d.ids.insert(s.clone(), id).is_some() {
                    return None;
                }
                d.strings.push(s);
            }
            // Id 0 is the empty string, as in a new dictionary.
            if d.strings.first().map(String::as_str) != Some("") {
                return None;
            }
        }
        if !rest.is_empty() {
            return None;
        }
        Some(Dictionaries {
            attrs: attrs.map(RwLock::new),
        })
    }

    /// Whether no string was ever interned (a new instance's, before its open filled it).
    pub fn is_new(&self) -> bool {
        self.attrs.iter().all(|d| d.read().strings.len() == 1)
    }

    /// Replaces these dictionaries' contents with `other`'s (at open, before any row
    /// reads them).
    pub fn replace_with(&self, other: Dictionaries) {
        for (mine, theirs) in self.attrs.iter().zip(other.attrs) {
            *mine.write() = theirs.into_inner();
        }
    }

    /// The column values (category, ints, string ids) of a record.
    pub fn columns_of(&self, record: &Record) -> [u32; COLUMNS] {
        let mut values = [0u32; COLUMNS];
        values[COLUMN_CATEGORY] = record.category_id;
        for i in 0..4 {
            values[COLUMN_INT + i] = record.int_attrs[i].unwrap_or(0) as u32;
            values[COLUMN_STR + i] = self.intern(i, record.str_attrs[i].as_deref().unwrap_or(""));
        }
        values
    }
}

/// A snapshot's columns seen through the dictionaries, for compiled filters.
pub struct RowAttributes<'a> {
    /// The snapshot scanned.
    pub snapshot: &'a Snapshot,
    /// The instance's dictionaries.
    pub dictionaries: &'a Dictionaries,
}

impl AttributeSource for RowAttributes<'_> {
    fn int(&self, attr: usize, row: usize) -> i32 {
        self.snapshot
            .column(COLUMN_INT + attr)
            .map_or(0, |c| c.get(row) as i32)
    }

    fn str_id(&self, attr: usize, row: usize) -> u32 {
        self.snapshot
            .column(COLUMN_STR + attr)
            .map_or(0, |c| c.get(row))
    }

    fn lookup_str(&self, attr: usize, value: &str) -> Option<u32> {
        self.dictionaries.lookup(attr, value)
    }

    fn ints(&self, attr: usize, first: usize, out: &mut [i32; 64]) {
        let mut values = [0u32; 64];
        if let Some(c) = self.snapshot.column(COLUMN_INT + attr) {
            c.read(first, &mut values);
        }
        for (o, v) in out.iter_mut().zip(values) {
            *o = v as i32;
        }
    }

    fn str_ids(&self, attr: usize, first: usize, out: &mut [u32; 64]) {
        out.fill(0);
        if let Some(c) = self.snapshot.column(COLUMN_STR + attr) {
            c.read(first, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_stable_and_empty_is_zero() {
        let d = Dictionaries::default();
        assert_eq!(d.lookup(0, ""), Some(0));
        let a = d.intern(0, "red");
        assert_eq!(d.intern(0, "red"), a);
        assert_ne!(d.intern(0, "blue"), a);
        assert_eq!(d.lookup(1, "red"), None);
        assert_eq!(d.intern(9, "x"), 0);
        let record = Record {
            category_id: 3,
            int_attrs: [Some(-1), None, Some(5), None],
            str_attrs: [Some("red".into()), None, None, None],
            ..Record::default()
        };
        let cols = d.columns_of(&record);
        assert_eq!(cols[COLUMN_CATEGORY], 3);
        assert_eq!(cols[COLUMN_INT] as i32, -1);
        assert_eq!(cols[COLUMN_INT + 2], 5);
        assert_eq!(cols[COLUMN_STR], a);
        assert_eq!(cols[COLUMN_STR + 1], 0);
    }

    #[test]
    fn dictionaries_round_trip_through_bytes() {
        let d = Dictionaries::default();
        assert!(d.is_new());
        let red = d.intern(0, "red");
        assert!(!d.is_new());
        let blue = d.intern(3, "blue");
        let bytes = d.to_bytes();
        let back = Dictionaries::from_bytes(&bytes).unwrap();
        assert_eq!(back.lookup(0, "red"), Some(red));
        assert_eq!(back.lookup(3, "blue"), Some(blue));
        assert_eq!(back.lookup(1, ""), Some(0));
        assert_eq!(back.intern(0, "green"), d.intern(0, "green"));
        assert!(Dictionaries::from_bytes(&bytes[..bytes.len() - 1]).is_none());
        let fresh = Dictionaries::default();
        fresh.replace_with(back);
        assert_eq!(fresh.lookup(3, "blue"), Some(blue));
    }
}
