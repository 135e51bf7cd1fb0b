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
//! Layout (every module, by layer from the top):
//! - `api/`: router, one file per Action, the admin routes, the console, TLS, the one
//!   table of vendor codes (`vendor_code.rs`) and errors (`error.rs`).
//! - `auth/`: request signatures (ACS3, ROA, RPC V1), keys, nonces, the CLI's signer.
//! - `offline/`: the commands that work on a data directory itself (import, verify,
//!   export, snapshots) and the sources an import reads.
//! - `client/`: the CLI's online mode (find the server of a data directory, signed calls).
//! - `manifest/`: the exchange format of distributed extraction (Parquet parts and
//!   `_MANIFEST.json`), written by `imgsearch extract` and read by the manifest import;
//!   between `engine` (which imports it) and `store` (its rows are records).
//! - `engine/`: `Engine` (all instances); `instance/` (one instance and what changes it)
//!   and `search/` (reading it), the batcher, tasks and snapshots.
//! - `index/`: vector file format, generations and manifest, `scan/` (the one scan entry,
//!   quantised copies, batches, top-k) and `kernels/` (one file per instruction set).
//! - `store/`: RocksDB column families, key layout, records, versioned instance metadata.
//! - `vision/`: `picture/` (decode, validate), `subject/` (subject, scene proposals),
//!   `extract/` (built-in and ONNX extractors), `local/` (keypoints for copy checks).
//! - `filter/`: the Filter language (lexer, parser, compiled evaluation on columns).
//! - `config`: server settings and their defaults.
//! - `fault`: named crash points of the write and rebuild paths (`IMGSEARCH_FAULT`).
//! - `allocator`: glibc malloc figures and the thread that returns freed memory.
//! - `fuzzing`: fuzz target bodies (the `fuzz/` crate calls them; tests replay the corpus).
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
pub mod manifest;
pub mod offline;
pub mod replica;
pub mod store;
pub mod vision;
