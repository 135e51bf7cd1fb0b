//! onnxruntime as a model runtime, through the `ort` crate with its library loaded at run
//! time (`load-dynamic`: nothing is downloaded or linked at build time).
//!
//! Each session runs on one intra-op thread: requests are already parallel, one per
//! core, so a thread pool per call would only fight them for the cores. `Session::run`
//! needs `&mut self` (some onnxruntime internals are not thread-safe), so sessions are
//! pooled, and the pool is bounded: a call takes an idle session, makes one while fewer
//! than the limit exist (see [`super::runtime::model_sessions`], the cores by default),
//! else waits for one to be put back. One per core (within the limit) is made at load, so
//! the server's memory does not grow when the load does. Unbounded, the pool grew with the number of
//! concurrent calls, each new session holding its own copy of the weights and scratch
//! memory, and more runs than cores only slowed each other down. Each session keeps its
//! input tensor, which the caller fills in place: no buffer is allocated per run.
//!
//! One run alone would leave the other cores idle, so on a machine of several cores the
//! runner also keeps one *wide* session, whose intra-op pool spans every core. A call takes
//! it when nothing else runs and nobody waits; while it runs, the other callers wait (its
//! threads already hold the cores) and, once it is back, take the narrow ones as long as
//! a queue remains: one request gets all cores, many get one core each. A caller that
//! keeps the other cores busy itself (two runs side by side, or a run beside other work:
//! [`super::runtime::sharing_cores`]) takes a narrow one even when alone. Its pool threads
//! sleep rather than spin between runs, so they take no core from the narrow sessions.

use std::path::{Path, PathBuf};

use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::Tensor;
use parking_lot::{Condvar, Mutex};

use super::onnx_input::{InputSlice, InputType};

/// The process's onnxruntime once loaded (a library cannot be swapped afterwards; a
/// failed load is not kept, so a later call with another path may still succeed).
static ENVIRONMENT: Mutex<Option<(Environment, PathBuf)>> = Mutex::new(None);

/// Loads onnxruntime from `library` (which must exist) unless one is loaded already;
/// returns its environment and the path it was loaded from.
fn environment(library: &Path) -> Result<(Environment, PathBuf), OrtError> {
    let fail = |reason: String| OrtError::Library {
        path: library.to_path_buf(),
        reason,
    };
    if !library.is_file() {
        return Err(fail("no such file".into()));
    }
    let mut loaded = ENVIRONMENT.lock();
    if let Some(found) = loaded.as_ref() {
        return Ok(found.clone());
    }
    let path = std::fs::canonicalize(library).unwrap_or_else(|_| library.into());
    let env = ort::init_from(library)
        .map_err(|e| fail(e.to_string()))?
        .with_name("imgsearch")
        .build()
        .map_err(|e| fail(e.to_string()))?;
    tracing::info!(library = %path.display(), "onnxruntime loaded");
    Ok(loaded.insert((env, path)).clone())
}

/// What onnxruntime refused.
#[derive(Debug, thiserror::Error)]
pub enum OrtError {
    /// The shared library cannot be loaded.
    #[error("onnxruntime library {}: {reason}", path.display())]
    Library {
        /// The library file.
        path: PathBuf,
        /// onnxruntime's message.
        reason: String,
    },
    /// The model takes no input.
    #[error("the model has no input")]
    NoInput,
    /// The model lacks an output asked for.
    #[error("the model has no output {0:?}")]
    NoOutput(String),
    /// A session could not be made or a run failed (onnxruntime's message).
    #[error("{0}")]
    Ort(String),
}

/// One output of a run: its values and its shape.
pub(super) type Output = (Vec<f32>, Vec<usize>);

/// The sessions of a model: the idle narrow ones, how many exist (idle or running), how
/// many run, the wide one when idle, the callers waiting, and how many runs took the
/// wide one.
struct Sessions {
    idle: Vec<Slot>,
    created: usize,
    running: usize,
    wide: Option<Slot>,
    wide_running: bool,
    waiting: usize,
    wide_runs: u64,
}

/// Which kind of session a caller holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Width {
    /// One intra-op thread.
    Narrow,
    /// An intra-op thread per core.
    Wide,
}

/// A session and its input tensor (made at its first run, kept for the next ones).
struct Slot {
    session: Session,
    input: Option<(InputTensor, [usize; 4])>,
}

/// A session's input tensor, of the model's element type.
enum InputTensor {
    U8(Tensor<u8>),
    F32(Tensor<f32>),
}

impl InputTensor {
    /// A tensor of zeros of `input_type` and `shape`.
    fn new(input_type: InputType, shape: [usize; 4]) -> Result<Self, ort::Error> {
        let n = shape.iter().product();
        Ok(match input_type {
            InputType::U8 => InputTensor::U8(Tensor::from_array((shape, vec![0u8; n]))?),
            InputType::F32 => InputTensor::F32(Tensor::from_array((shape, vec![0f32; n]))?),
        })
    }

    /// The element type.
    fn input_type(&self) -> InputType {
        match self {
            InputTensor::U8(_) => InputType::U8,
            InputTensor::F32(_) => InputType::F32,
        }
    }

    /// The values, to be written in place.
    fn values(&mut self) -> InputSlice<'_> {
        match self {
            InputTensor::U8(t) => InputSlice::U8(t.extract_tensor_mut().1),
            InputTensor::F32(t) => InputSlice::F32(t.extract_tensor_mut().1),
        }
    }
}

/// Frees a session's place in the pool unless defused once the session is put back: a run
/// that panics drops its session, and without this each caught panic would shrink the pool
/// for good, the last one leaving every caller waiting.
/// A lost wide session is not replaced: the narrow ones carry on alone.
struct Forfeit<'a>(&'a OrtRunner, Width);

impl Drop for Forfeit<'_> {
    fn drop(&mut self) {
        let mut sessions = self.0.sessions.lock();
        match self.1 {
            Width::Narrow => {
                sessions.created -= 1;
                sessions.running -= 1;
            }
            Width::Wide => sessions.wide_running = false,
        }
        drop(sessions);
        self.0.returned.notify_all();
    }
}

/// A model on onnxruntime: its bytes (to make more sessions) and its bounded session pool.
pub(super) struct OrtRunner {
    env: Environment,
    model: Vec<u8>,
    input: String,
    outputs: Vec<String>,
    sessions: Mutex<Sessions>,
    /// Signalled when a session is put back (or a slot freed by a failed creation).
    returned: Condvar,
    /// Most sessions this model may have at once.
    limit: usize,
    /// The library file, for log lines and reports.
    pub(super) library: PathBuf,
}

impl OrtRunner {
    /// Loads the library if needed and the sessions of `model` (the wide one and a narrow
    /// one per core within `limit`), which must have an output of each of `outputs`'
    /// names; at most `limit` narrow sessions (at least one) will ever exist at once.
    pub(super) fn new(
        library: &Path,
        model: &[u8],
        outputs: &[String],
        limit: usize,
    ) -> Result<Self, OrtError> {
        let (env, loaded) = environment(library)?;
        let mut runner = OrtRunner {
            env,
            model: model.to_vec(),
            input: String::new(),
            outputs: outputs.to_vec(),
            sessions: Mutex::new(Sessions {
                idle: Vec::new(),
                created: 1,
                running: 0,
                wide: None,
                wide_running: false,
                waiting: 0,
                wide_runs: 0,
            }),
            returned: Condvar::new(),
            limit: limit.max(1),
            library: loaded,
        };
        let session = runner.session(1)?;
        let input = session.inputs().first().ok_or(OrtError::NoInput)?;
        runner.input = input.name().to_string();
        for name in outputs {
            if !session.outputs().iter().any(|o| o.name() == name) {
                return Err(OrtError::NoOutput(name.clone()));
            }
        }
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let wide = if cores > 1 {
            Some(Slot {
                session: runner.session(cores)?,
                input: None,
            })
        } else {
            None
        };
        // The narrow sessions a loaded server uses (one per core, within the limit) are
        // made now, so that memory does not grow with concurrency; more only on demand.
        let mut idle = vec![Slot {
            session,
            input: None,
        }];
        for _ in 1..runner.limit.min(cores) {
            idle.push(Slot {
                session: runner.session(1)?,
                input: None,
            });
        }
        let mut sessions = runner.sessions.lock();
        sessions.created = idle.len();
        sessions.idle = idle;
        sessions.wide = wide;
        drop(sessions);
        Ok(runner)
    }

    /// How many narrow sessions exist (idle or running): never more than the limit.
    pub(super) fn sessions_created(&self) -> usize {
        self.sessions.lock().created
    }

    /// How many runs took the wide session.
    pub(super) fn wide_runs(&self) -> u64 {
        self.sessions.lock().wide_runs
    }

    /// The wide session when nothing runs, nobody else waits and the caller does not
    /// share the cores with other work ([`super::runtime::sharing_cores`]); else, unless
    /// the wide one runs, an idle narrow session or a new one while fewer than the limit exist; else
    /// the next one put back.
    fn take(&self) -> Result<(Slot, Width), OrtError> {
        let narrow_only = super::runtime::shares_cores();
        let mut sessions = self.sessions.lock();
        loop {
            if !sessions.wide_running {
                if sessions.running == 0 && sessions.waiting == 0 && !narrow_only {
                    if let Some(slot) = sessions.wide.take() {
                        sessions.wide_running = true;
                        sessions.wide_runs += 1;
                        return Ok((slot, Width::Wide));
                    }
                }
                if let Some(slot) = sessions.idle.pop() {
                    sessions.running += 1;
                    return Ok((slot, Width::Narrow));
                }
                if sessions.created < self.limit {
                    sessions.created += 1;
                    sessions.running += 1;
                    drop(sessions);
                    return match self.session(1) {
                        Ok(session) => Ok((
                            Slot {
                                session,
                                input: None,
                            },
                            Width::Narrow,
                        )),
                        Err(e) => {
                            let mut sessions = self.sessions.lock();
                            sessions.created -= 1;
                            sessions.running -= 1;
                            drop(sessions);
                            self.returned.notify_all();
                            Err(e)
                        }
                    };
                }
            }
            sessions.waiting += 1;
            self.returned.wait(&mut sessions);
            sessions.waiting -= 1;
        }
    }

    /// Puts a session back for the next callers: a narrow one wakes one waiter (it can
    /// serve one; waking all of them had each put-back preempt the running networks with
    /// waiters that found nothing), the wide one all of them (each may find a narrow
    /// session).
    fn put_back(&self, slot: Slot, width: Width) {
        let mut sessions = self.sessions.lock();
        let wake_all = match width {
            Width::Narrow => {
                sessions.idle.push(slot);
                sessions.running -= 1;
                false
            }
            Width::Wide => {
                sessions.wide = Some(slot);
                sessions.wide_running = false;
                true
            }
        };
        drop(sessions);
        if wake_all {
            self.returned.notify_all();
        } else {
            self.returned.notify_one();
        }
    }

    /// A new session of the model: full graph optimisation, `threads` intra-op threads
    /// that sleep between runs.
    fn session(&self, threads: usize) -> Result<Session, OrtError> {
        let err = |e: ort::Error<_>| OrtError::Ort(e.to_string());
        Session::builder(&self.env)
            .map_err(|e| OrtError::Ort(e.to_string()))?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(err)?
            .with_intra_threads(threads)
            .map_err(err)?
            .with_intra_op_spinning(false)
            .map_err(err)?
            .with_inter_threads(1)
            .map_err(err)?
            .commit_from_memory(&self.model)
            .map_err(|e| OrtError::Ort(e.to_string()))
    }

    /// Runs the model on one input tensor of `input_type` and `shape`, whose values `fill`
    /// writes into the session's own tensor; returns each requested output's values and
    /// shape.
    pub(super) fn run(
        &self,
        shape: [usize; 4],
        input_type: InputType,
        fill: impl FnOnce(InputSlice<'_>),
    ) -> Result<Vec<Output>, OrtError> {
        let err = |e: ort::Error| OrtError::Ort(e.to_string());
        let (mut slot, width) = self.take()?;
        let forfeit = Forfeit(self, width);
        let result = (|| {
            let input = match &mut slot.input {
                Some((tensor, made)) if *made == shape && tensor.input_type() == input_type => {
                    tensor
                }
                other => {
                    &mut other
                        .insert((InputTensor::new(input_type, shape)?, shape))
                        .0
                }
            };
            fill(input.values());
            let value: ort::session::SessionInputValue<'_> = match input {
                InputTensor::U8(t) => (&*t).into(),
                InputTensor::F32(t) => (&*t).into(),
            };
            let outputs = slot
                .session
                .run(ort::inputs![self.input.as_str() => value])?;
            self.outputs
                .iter()
                .map(|name| {
                    let (shape, data) = outputs[name.as_str()].try_extract_tensor::<f32>()?;
                    let dims = shape.iter().map(|&d| d.max(0) as usize).collect();
                    Ok((data.to_vec(), dims))
                })
                .collect::<Result<Vec<Output>, ort::Error>>()
        })()
        .map_err(err);
        std::mem::forget(forfeit);
        self.put_back(slot, width);
        result
    }
}
