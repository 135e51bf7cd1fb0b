//! Running the network on a picture: the views, the input tensor, the run on either
//! backend, pooling, and the vector recipe of [`ModelSpec`] behind the [`Extractor`] trait.

use image::RgbImage;
use tract_onnx::prelude::*;

use super::super::extractor::{l2_normalize, Extractor, Screening};
use super::super::onnx_input::{InputData, InputSlice, Layout};
use super::backend::Backend;
use super::{ModelRunError, ModelSpec, OnnxExtractor, ONNX_EXTRACTOR};
use crate::vision::picture::region::Region;
use crate::vision::picture::resample::area_resize_rows;

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

    /// How many runs took onnxruntime's session spread over every core (a lone run not
    /// inside [`crate::vision::sharing_cores`]); `None` on tract. For tests and reports.
    #[must_use]
    pub fn wide_runs(&self) -> Option<u64> {
        self.backend.wide_runs()
    }

    /// Times one whole-picture view's two stages: the area resize into the input tensor's
    /// values, then the network run (those values copied in). For benchmarks.
    pub fn time_stages(
        &self,
        rgb: &RgbImage,
    ) -> Result<(std::time::Duration, std::time::Duration), ModelRunError> {
        let started = std::time::Instant::now();
        let mut data = InputData::zeros(self.spec.input_type, self.input_len());
        fill_view(&self.spec, rgb, &View::whole(None), data.as_slice_mut());
        let resized = started.elapsed();
        self.run(|out| match (&data, out) {
            (InputData::U8(from), InputSlice::U8(to)) => to.copy_from_slice(from),
            (InputData::F32(from), InputSlice::F32(to)) => to.copy_from_slice(from),
            _ => {}
        })?;
        Ok((resized, started.elapsed() - resized))
    }

    /// Samples in the input tensor.
    fn input_len(&self) -> usize {
        self.spec.width as usize * self.spec.height as usize * 3
    }

    /// Runs the network on the input `fill` writes; returns the embedding and the class
    /// scores.
    fn run(
        &self,
        fill: impl FnOnce(InputSlice<'_>),
    ) -> Result<(Vec<f32>, Option<Vec<f32>>), ModelRunError> {
        let (w, h) = (self.spec.width as usize, self.spec.height as usize);
        let shape = match self.spec.layout {
            Layout::Nhwc => [1, h, w, 3],
            Layout::Nchw => [1, 3, h, w],
        };
        let mut outputs: Vec<Vec<f32>> = match &self.backend {
            Backend::Tract(plan) => {
                let mut data = InputData::zeros(self.spec.input_type, self.input_len());
                fill(data.as_slice_mut());
                let tensor =
                    match data {
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
                .run(shape, self.spec.input_type, fill)?
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

    /// The views of a region: whole, mirrored, centre crop.
    fn views(&self, rgb: &RgbImage, region: Option<&Region>) -> Vec<View> {
        let mut views = vec![View::whole(region.copied())];
        if self.spec.flip {
            views.push(View::mirror(region.copied()));
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
            views.push(View::whole(Some(Region {
                x1: r.x1 + dx,
                x2: r.x2 - dx,
                y1: r.y1 + dy,
                y2: r.y2 - dy,
            })));
        }
        views
    }
}

/// What one run of the network sees: a region of the picture (the whole one when
/// `None`), mirrored left to right or not.
#[derive(Debug, Clone, Copy)]
pub(super) struct View {
    region: Option<Region>,
    mirrored: bool,
}

impl View {
    /// `region` as it is.
    pub(super) fn whole(region: Option<Region>) -> Self {
        View {
            region,
            mirrored: false,
        }
    }

    /// `region` mirrored left to right.
    pub(super) fn mirror(region: Option<Region>) -> Self {
        View {
            region,
            mirrored: true,
        }
    }
}

/// Writes the input tensor's values for `view` of `rgb` into `out` (`spec`'s input
/// size, layout and type): the view area-averaged to the input size, each output row of
/// the resize converted as it comes, so no raster of the view is kept.
pub(super) fn fill_view(spec: &ModelSpec, rgb: &RgbImage, view: &View, mut out: InputSlice<'_>) {
    let (w, h) = (spec.width as usize, spec.height as usize);
    let place = |y| RowPlace {
        y,
        width: w,
        layout: spec.layout,
        mirrored: view.mirrored,
    };
    area_resize_rows(
        rgb,
        view.region.as_ref(),
        w,
        h,
        |y, samples| match &mut out {
            // Samples are within 0..=255: adding a half and truncating rounds them (ties
            // up) without a call to `round`.
            InputSlice::U8(o) => place(y).write(o, samples, |v, _| (v + 0.5) as u8),
            InputSlice::F32(o) => {
                place(y).write(o, samples, |v, c| (v / 255.0 - spec.mean[c]) / spec.std[c])
            }
        },
    );
}

/// Where one row of the resized view goes in the input tensor.
struct RowPlace {
    y: usize,
    width: usize,
    layout: Layout,
    mirrored: bool,
}

impl RowPlace {
    /// Writes one row's interleaved RGB `samples`, each converted by `convert(sample,
    /// channel)`, into the tensor `out`: interleaved for NHWC, planar for NCHW.
    fn write<T>(&self, out: &mut [T], samples: &[f32], convert: impl Fn(f32, usize) -> T) {
        let (y, w) = (self.y, self.width);
        match self.layout {
            Layout::Nhwc => {
                let Some(row) = out.get_mut(y * w * 3..(y + 1) * w * 3) else {
                    return;
                };
                let pixels = samples.chunks_exact(3);
                let mut put = |(o, s): (&mut [T], &[f32])| {
                    for (c, (o, &s)) in o.iter_mut().zip(s).enumerate() {
                        *o = convert(s, c);
                    }
                };
                if self.mirrored {
                    row.chunks_exact_mut(3).rev().zip(pixels).for_each(&mut put);
                } else {
                    row.chunks_exact_mut(3).zip(pixels).for_each(&mut put);
                }
            }
            Layout::Nchw => {
                let plane = out.len() / 3;
                for c in 0..3 {
                    let at = c * plane + y * w;
                    let Some(row) = out.get_mut(at..at + w) else {
                        return;
                    };
                    let channel = samples.iter().skip(c).step_by(3);
                    if self.mirrored {
                        row.iter_mut()
                            .rev()
                            .zip(channel)
                            .for_each(|(o, &s)| *o = convert(s, c));
                    } else {
                        row.iter_mut()
                            .zip(channel)
                            .for_each(|(o, &s)| *o = convert(s, c));
                    }
                }
            }
        }
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

    /// The fused built-in part alone. A stored vector is `[e, w·b] / √(1 + w²)` with the
    /// embedding `e` and the built-in `b` of unit length, so the query `[0, b'·√(1 + w²)/w]`
    /// scores every stored vector by the cosine `b·b'` of the built-in parts, ordered as a
    /// built-in instance would order them, without running the network.
    fn screening(&self, rgb: &RgbImage, region: Option<&Region>) -> Option<Screening> {
        let weight = self.spec.colour_weight;
        if weight <= 0.0 {
            return None;
        }
        let scale = (1.0 + weight * weight).sqrt() / weight;
        let part = self.builtin.extract(rgb, region);
        let mut vector = vec![0.0f32; self.spec.embedding_dimension];
        vector.extend(part.iter().map(|x| x * scale));
        Some(Screening { vector, part })
    }

    /// The network's embedding fused with the built-in part the screening computed.
    fn extract_screened(
        &self,
        rgb: &RgbImage,
        region: Option<&Region>,
        screening: &Screening,
    ) -> Vec<f32> {
        let (embedding, _) = self.embedding(rgb, region);
        self.fused(embedding, || screening.part.clone())
    }

    fn extract_with_classes(
        &self,
        rgb: &RgbImage,
        region: Option<&Region>,
    ) -> (Vec<f32>, Option<Vec<f32>>) {
        let (embedding, classes) = self.embedding(rgb, region);
        let vector = self.fused(embedding, || self.builtin.extract(rgb, region));
        (vector, classes)
    }
}

impl OnnxExtractor {
    /// The network's pooled embedding of `rgb` (in `region`), of unit length, and the
    /// first view's class scores when the model outputs them.
    fn embedding(&self, rgb: &RgbImage, region: Option<&Region>) -> (Vec<f32>, Option<Vec<f32>>) {
        let mut embedding = vec![0.0f32; self.spec.embedding_dimension];
        let mut classes = None;
        for (i, view) in self.views(rgb, region).iter().enumerate() {
            match self.run(|input| fill_view(&self.spec, rgb, view, input)) {
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
        (embedding, classes)
    }

    /// `embedding` fused with the built-in descriptor (`colour`, asked only when the
    /// spec fuses one): `[e, w·b] / √(1 + w²)`.
    fn fused(&self, mut embedding: Vec<f32>, colour: impl FnOnce() -> Vec<f32>) -> Vec<f32> {
        if self.spec.colour_weight > 0.0 {
            let colour = colour();
            embedding.extend(colour.iter().map(|x| x * self.spec.colour_weight));
            l2_normalize(&mut embedding);
        }
        embedding
    }
}
