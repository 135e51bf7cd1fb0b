//! Running the network on a picture: the views, the input tensor, the run on either
//! backend, pooling, and the vector recipe of [`ModelSpec`] behind the [`Extractor`] trait.

use image::RgbImage;
use tract_onnx::prelude::*;

use super::super::extractor::{l2_normalize, Extractor};
use super::super::onnx_input::{InputData, InputSlice, Layout};
use super::backend::Backend;
use super::{ModelRunError, ModelSpec, OnnxExtractor, ONNX_EXTRACTOR};
use crate::vision::picture::region::Region;
use crate::vision::picture::resample::{area_resize, Raster};

impl OnnxExtractor {
    /// The resolved spec (stored with the instance).
    #[must_use]
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// How many onnxruntime sessions the model has made, idle or running (never more than
    /// the session limit); `None` when it runs on tract. For tests and reports.
    #[must_use]
    pub fn sessions_created(&self) -> Option<usize> {
        self.backend.sessions_created()
    }

    /// Times one whole-picture view's two stages: the area resize to the input size, then
    /// the network run (tensor filling included). For benchmarks.
    pub fn time_stages(
        &self,
        rgb: &RgbImage,
    ) -> Result<(std::time::Duration, std::time::Duration), ModelRunError> {
        let started = std::time::Instant::now();
        let (w, h) = (self.spec.width as usize, self.spec.height as usize);
        let raster = area_resize(rgb, None, w, h);
        let resized = started.elapsed();
        self.run(&raster)?;
        Ok((resized, started.elapsed() - resized))
    }

    /// Runs the network on one raster; returns the embedding and the class scores.
    fn run(&self, raster: &Raster) -> Result<(Vec<f32>, Option<Vec<f32>>), ModelRunError> {
        let shape = self.shape(raster);
        let mut outputs: Vec<Vec<f32>> = match &self.backend {
            Backend::Tract(plan) => {
                let tensor =
                    match self.input_data(raster) {
                        InputData::U8(v) => tract_ndarray::Array4::from_shape_vec(shape, v)
                            .map(IntoTensor::into_tensor),
                        InputData::F32(v) => tract_ndarray::Array4::from_shape_vec(shape, v)
                            .map(IntoTensor::into_tensor),
                    }
                    .map_err(ModelRunError::Input)?;
                let outputs = plan
                    .run(tvec!(tensor.into()))
                    .map_err(|e| ModelRunError::Tract(format!("{e:#}")))?;
                outputs
                    .iter()
                    .map(|o| o.as_slice::<f32>().map(<[f32]>::to_vec))
                    .collect::<TractResult<_>>()
                    .map_err(|e| ModelRunError::Tract(format!("{e:#}")))?
            }
            #[cfg(feature = "ort")]
            // Written straight into the session's own input tensor: no buffer per run.
            Backend::Ort(runner) => runner
                .run(shape, self.spec.input_type, |input| {
                    self.fill_input(raster, input)
                })?
                .into_iter()
                .map(|(values, _)| values)
                .collect(),
        };
        let classes = (outputs.len() > 1).then(|| outputs.swap_remove(1));
        let embedding = &outputs[0];
        let embedding = if self.cells > 1 {
            pool(
                embedding,
                self.cells,
                self.spec.embedding_dimension,
                self.spec.layout,
            )
        } else {
            embedding.clone()
        };
        Ok((embedding, classes))
    }

    /// The input tensor's shape for a raster of the input size.
    fn shape(&self, raster: &Raster) -> [usize; 4] {
        let (w, h) = (raster.width, raster.height);
        match self.spec.layout {
            Layout::Nhwc => [1, h, w, 3],
            Layout::Nchw => [1, 3, h, w],
        }
    }

    /// The input tensor's values for a raster of the input size.
    fn input_data(&self, raster: &Raster) -> InputData {
        let mut data = InputData::zeros(self.spec.input_type, raster.width * raster.height * 3);
        self.fill_input(raster, data.as_slice_mut());
        data
    }

    /// Writes the input tensor's values for a raster of the input size into `out`.
    fn fill_input(&self, raster: &Raster, out: InputSlice<'_>) {
        let (w, h) = (raster.width, raster.height);
        // Samples in the tensor's order: interleaved for NHWC, planar for NCHW.
        let at = |i: usize| -> f32 {
            match self.spec.layout {
                Layout::Nhwc => raster.data[i],
                Layout::Nchw => {
                    let (c, p) = (i / (w * h), i % (w * h));
                    raster.data[p * 3 + c]
                }
            }
        };
        match out {
            InputSlice::U8(out) => {
                for (i, o) in out.iter_mut().enumerate() {
                    *o = at(i).round().clamp(0.0, 255.0) as u8;
                }
            }
            InputSlice::F32(out) => {
                let channel = |i: usize| match self.spec.layout {
                    Layout::Nhwc => i % 3,
                    Layout::Nchw => i / (w * h),
                };
                for (i, o) in out.iter_mut().enumerate() {
                    let c = channel(i);
                    *o = (at(i) / 255.0 - self.spec.mean[c]) / self.spec.std[c];
                }
            }
        }
    }

    /// The views of a region: whole, mirrored, centre crop.
    fn views(&self, rgb: &RgbImage, region: Option<&Region>) -> Vec<Raster> {
        let (w, h) = (self.spec.width as usize, self.spec.height as usize);
        let whole = area_resize(rgb, region, w, h);
        let mut views = Vec::with_capacity(3);
        if self.spec.flip {
            views.push(mirror(&whole));
        }
        if self.spec.centre_crop > 0.0 && self.spec.centre_crop < 1.0 {
            let r = region
                .and_then(|r| r.clamped(rgb.width(), rgb.height()))
                .unwrap_or(Region::full(rgb.width(), rgb.height()));
            let keep = self.spec.centre_crop;
            let (dx, dy) = (
                (r.width() as f32 * (1.0 - keep) / 2.0) as u32,
                (r.height() as f32 * (1.0 - keep) / 2.0) as u32,
            );
            let inner = Region {
                x1: r.x1 + dx,
                x2: r.x2 - dx,
                y1: r.y1 + dy,
                y2: r.y2 - dy,
            };
            views.push(area_resize(rgb, Some(&inner), w, h));
        }
        views.insert(0, whole);
        views
    }
}

/// Averages an unpooled `[cells, dim]` (NHWC) or `[dim, cells]` (NCHW) output.
pub(super) fn pool(values: &[f32], cells: usize, dim: usize, layout: Layout) -> Vec<f32> {
    let mut out = vec![0.0f32; dim];
    for (i, v) in values.iter().enumerate() {
        let d = match layout {
            Layout::Nhwc => i % dim,
            Layout::Nchw => i / cells,
        };
        if let Some(o) = out.get_mut(d) {
            *o += v / cells as f32;
        }
    }
    out
}

/// The raster mirrored left to right.
pub(super) fn mirror(r: &Raster) -> Raster {
    let mut data = Vec::with_capacity(r.data.len());
    for row in r.data.chunks_exact(r.width * 3) {
        for px in row.chunks_exact(3).rev() {
            data.extend_from_slice(px);
        }
    }
    Raster {
        width: r.width,
        height: r.height,
        data,
    }
}

/// `sign(x) * |x|^power`.
pub(super) fn power_law(v: &mut [f32], power: f32) {
    if (power - 1.0).abs() > f32::EPSILON {
        v.iter_mut()
            .for_each(|x| *x = x.signum() * x.abs().powf(power));
    }
}

impl Extractor for OnnxExtractor {
    fn name(&self) -> &str {
        ONNX_EXTRACTOR
    }

    fn dimension(&self) -> usize {
        self.spec.dimension()
    }

    fn runtime(&self) -> Option<String> {
        Some(self.backend.describe())
    }

    fn extract(&self, rgb: &RgbImage, region: Option<&Region>) -> Vec<f32> {
        self.extract_with_classes(rgb, region).0
    }

    fn extract_with_classes(
        &self,
        rgb: &RgbImage,
        region: Option<&Region>,
    ) -> (Vec<f32>, Option<Vec<f32>>) {
        let mut embedding = vec![0.0f32; self.spec.embedding_dimension];
        let mut classes = None;
        for (i, view) in self.views(rgb, region).iter().enumerate() {
            match self.run(view) {
                Ok((e, c)) => {
                    embedding.iter_mut().zip(&e).for_each(|(a, b)| *a += b);
                    if i == 0 {
                        classes = c;
                    }
                }
                // Cannot happen with a plan built for this input shape; a uniform vector
                // (similar to nothing in particular) is the least harmful answer.
                Err(e) => tracing::error!(error = %e, "model run failed"),
            }
        }
        power_law(&mut embedding, self.spec.power);
        l2_normalize(&mut embedding);
        if self.spec.colour_weight > 0.0 {
            let colour = self.builtin.extract(rgb, region);
            embedding.extend(colour.iter().map(|x| x * self.spec.colour_weight));
            l2_normalize(&mut embedding);
        }
        (embedding, classes)
    }
}
