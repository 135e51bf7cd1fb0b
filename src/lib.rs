//! imgsearch: a self-hosted image search engine that speaks the Alibaba Cloud Image
//! Search API (2020-12-14 RPC and the 2019-03-25 ROA paths).
//!
//! Data flows one way: [`api`] (HTTP, parameters, vendor shapes and codes) calls
//! [`engine`] (instances, write ordering, search flow), which uses [`store`] (RocksDB,
//! the source of truth), [`index`] (memory-mapped flat vector files and the scan) and
//! [`vision`] (decode, validation, subject detection, feature extraction). No layer
//! reaches past its neighbour: `index` knows nothing of pictures, `vision` nothing of
//! storage, `api` nothing of RocksDB.
//!
//! Layout:
//! - `allocator`: glibc malloc figures and the thread that returns freed memory.
//! - `client/`: the CLI's online mode (find the server of a data directory, signed calls).
//! - `config`: server settings and their defaults.
//! - `fuzzing`: fuzz target bodies (the `fuzz/` crate calls them; tests replay the corpus).
//! - `fault`: named crash points of the write and rebuild paths (`IMGSEARCH_FAULT`).
//! - `offline/`: the commands that work on a data directory itself (import, verify,
//!   export, snapshots) and the sources an import reads.
//! - `api/`: router, one file per Action, the one error table.
//! - `engine/`: `Engine` (all instances) and `Instance` (store + index + extractor).
//! - `store/`: RocksDB column families, key layout, records.
//! - `index/`: vector file format, generations and manifest, scan kernels, top-k.
//! - `vision/`: picture decoding and validation, regions, extractors.
#![warn(missing_docs)]

pub mod allocator;
pub mod api;
pub mod auth;
pub mod client;
pub mod config;
pub mod engine;
pub mod fault;
pub mod filter;
pub mod fuzzing;
pub mod index;
pub mod offline;
pub mod store;
pub mod vision;
