//! The projection an instance's rows and queries go through (none or a whitening),
//! and the one stored with an instance, checked against its extractor.

use std::borrow::Cow;
use std::sync::Arc;

use super::{Whitening, WhiteningError};
use crate::engine::EngineError;
use crate::store::{InstanceMeta, Store};

/// The projection an instance's index rows and queries go through: none (the raw
/// vectors) or a whitening. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Projection(Option<Arc<Whitening>>);

impl Projection {
    /// No projection: rows are the extractor's vectors.
    pub fn none() -> Self {
        Projection(None)
    }

    /// Projection through a whitening.
    pub fn whitening(w: Whitening) -> Self {
        Projection(Some(Arc::new(w)))
    }

    /// The whitening, if any.
    pub fn get(&self) -> Option<&Whitening> {
        self.0.as_deref()
    }

    /// The whitening, shared (no copy of its matrix).
    pub fn shared(&self) -> Option<Arc<Whitening>> {
        self.0.clone()
    }

    /// Dimension of the rows for an extractor of `raw` dimensions.
    pub fn dimension(&self, raw: usize) -> usize {
        self.get().map_or(raw, Whitening::output_dim)
    }

    /// A raw vector as the index holds it.
    pub fn apply<'a>(&self, raw: &'a [f32]) -> Result<Cow<'a, [f32]>, WhiteningError> {
        match self.get() {
            None => Ok(Cow::Borrowed(raw)),
            Some(w) => w.project(raw).map(Cow::Owned),
        }
    }
}

/// The projection stored with an instance. A whitening fitted for another dimension
/// than the instance's extractor (or unreadable) refuses the instance rather than
/// projecting garbage.
pub(crate) fn stored(store: &Store, meta: &InstanceMeta) -> Result<Projection, EngineError> {
    let Some(bytes) = store.projection(meta.id)? else {
        return Ok(Projection::none());
    };
    let refuse = |reason: String| EngineError::ProjectionMismatch {
        name: meta.name.clone(),
        reason,
    };
    let w = Whitening::from_bytes(&bytes).map_err(|e| refuse(e.to_string()))?;
    if w.input_dim() != meta.dimension as usize {
        return Err(refuse(format!(
            "its whitening takes {} dimensions, the extractor {} gives {}",
            w.input_dim(),
            meta.extractor,
            meta.dimension
        )));
    }
    Ok(Projection::whitening(w))
}
