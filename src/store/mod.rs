//! The record store: RocksDB, the source of truth for every instance.
//!
//! Everything a search result shows (ProductId, PicName, category, CustomContent,
//! attributes, region) and every picture's vector live here. The vector files of
//! [`crate::index`] are a derived, faster copy that can always be rebuilt from the store.
//!
//! Column families and key layout (all integers big-endian so that keys sort by number):
//!
//! ```text
//! instances  name (UTF-8)                                  -> InstanceMeta (versioned, meta.rs)
//! records    inst u32 | doc u64                            -> Record (bincode)
//! vectors    inst u32 | doc u64                            -> f32 little-endian bytes
//! thumbnails inst u32 | doc u64                            -> JPEG preview (console)
//! local_features inst u32 | doc u64                        -> keypoints (vision::LocalFeatures)
//! names      inst u32 | len(product) u32 | product | pic   -> doc u64
//! projections inst u32                                    -> index projection (engine bytes)
//! counters   inst u32 | "next_doc"                         -> u64   (the write receipt)
//!            inst u32 | "columns_stamp"                    -> u64   (stamp.rs)
//!            inst u32 | "progress/" | source               -> an import's progress mark
//!            "next_instance"                               -> u32
//! ```
//!
//! Every change is one `WriteBatch` written with `sync = true`; the batch is the receipt
//! of a write: a picture exists exactly when its batch has committed. Doc ids grow
//! monotonically per instance, so the `next_doc` counter tells which vector rows were
//! acknowledged (see [`crate::engine`] for the write order).

pub(crate) mod envelope;
mod error;
mod families;
mod keys;
mod meta;
mod reads;
mod record;
mod rocks;
mod stamp;
mod teardown;
#[cfg(test)]
mod tests;
mod transplant;
mod writes;

pub use error::{Result, StoreError};
pub use meta::InstanceMeta;
pub use record::Record;
pub use rocks::{Store, StoreMemory, StoreMode};
pub use writes::{AddBatch, ProgressMark};
