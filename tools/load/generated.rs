//! The synthetic benchmark's instance: filled with generated unit vectors (kept between
//! runs: filling is the slow part), so it can be grown to any size without extracting a
//! million pictures, while the queries are real photos (`grocery_jpegs.rs`).

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};

use imgsearch::engine::{Engine, ExtractorChoice, InstanceSpec, ServiceType};
use imgsearch::store::Record;

/// Makes instance `name` (created with `choice` and room for `capacity` pictures if
/// missing) hold `pictures` generated vectors of its dimension; returns how many it holds
/// (more when filled earlier for more).
pub fn fill(
    data_dir: &Path,
    name: &str,
    choice: &ExtractorChoice,
    pictures: usize,
    capacity: u64,
) -> Result<usize> {
    let started = Instant::now();
    let engine = Engine::open(data_dir).context("opening the data directory")?;
    println!(
        "engine open (map + reconcile with the store) in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let instance = match engine.instance(name) {
        Ok(i) => i,
        Err(_) => engine.create_instance_with(
            &InstanceSpec {
                name: name.into(),
                service_type: ServiceType::Generic,
                qps: 0,
                capacity,
                local_features: false,
            },
            choice,
        )?,
    };
    let have = instance.info().total_count as usize;
    if have >= pictures {
        return Ok(have);
    }
    let dim = instance.meta().dimension as usize;
    let started = Instant::now();
    let mut state = 0x9e3779b97f4a7c15u64 ^ have as u64;
    let mut i = have;
    while i < pictures {
        let end = (i + 10_000).min(pictures);
        let chunk: Vec<(Record, Vec<f32>)> = (i..end)
            .map(|i| {
                let v: Vec<f32> = (0..dim)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        ((state >> 40) as f32 / (1u64 << 24) as f32).powi(3)
                    })
                    .collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                let record = Record {
                    product_id: format!("p{}", i / 4),
                    pic_name: format!("{i}.jpg"),
                    category_id: imgsearch::engine::CATEGORY_OTHER,
                    int_attrs: [Some((i % 100) as i32), None, None, None],
                    ..Record::default()
                };
                (record, v.iter().map(|x| x / norm).collect())
            })
            .collect();
        instance.add_vectors(&chunk)?;
        i = end;
        println!(
            "  filled {i}/{pictures} ({:.0} s)",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(pictures)
}
