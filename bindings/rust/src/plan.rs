//! Reading one's slice of a sharded model: [`Plan`], and the frameworks' split formulas ([`split`] & co.).

use std::ffi::CString;
use std::os::raw::c_int;
use std::ptr::{self, NonNull};
use std::sync::Arc;
use std::time::Duration;

use crate::c_string;
use crate::dtype::{DType, Element};
use crate::error::{check, Error, Result};
use crate::ffi;
use crate::snapshot::Snapshot;
use crate::timeout_ms;
use crate::topic::{copy_dims, Topic, TopicHandle};

/// A box of one logical tensor that a destination takes, then `pad` zero rows along the destination's
/// `concat_dim` (vLLM's vocabulary padding; usually 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlicePart {
    pub name: String,
    pub offset: Vec<i64>,
    pub extent: Vec<i64>,
    pub pad: i64,
}

/// A host buffer of the plan's: its parts concatenated along `concat_dim`, contiguous, of `shape`.
///
/// `dtype` is the buffer's: the parts' own copies their bytes; another converts them on the way (the header's
/// "Conversions": bf16, f16 or f32 into `F8E4M3` or `F8E5M2`, which need a `scale_layout`; f32 into `BF16`,
/// which takes `ScaleLayout::None`).
#[derive(Clone, Debug)]
pub struct SliceDest {
    pub dtype: DType,
    pub shape: Vec<i64>,
    pub parts: Vec<SlicePart>,
    pub concat_dim: u32,
    pub scale_layout: ScaleLayout,
}

/// Where an FP8 destination's f32 scales go (`WB_SCALE_*`): the plan allocates them beside the buffer and
/// [`Plan::scales`] reads them. A scale dequantizes: value ≈ fp8 × scale (vLLM's `weight_scale`, DeepSeek-V3's
/// `weight_scale_inv`). Groups are taken over the destination as a row-major matrix `[R, C]`, as the header's
/// "Conversions" defines it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ScaleLayout {
    /// No scales: a plain copy, or f32 into bf16.
    #[default]
    None,
    /// One scale for the whole destination.
    Tensor,
    /// One per row, `shape[0]` of them (vLLM's per-channel `weight_scale`).
    Channel,
    /// One per `rows` × `cols` block of a 2-D destination, `ceil(R / rows) × ceil(C / cols)` of them,
    /// row-major; both 0: 128 × 128 (DeepSeek-V3's layout).
    Block { rows: u32, cols: u32 },
}

impl ScaleLayout {
    /// `WB_SCALE_*`, and the block's sides as `wb_slice_dest` takes them.
    fn raw(self) -> (u32, u32, u32) {
        match self {
            ScaleLayout::None => (ffi::WB_SCALE_NONE, 0, 0),
            ScaleLayout::Tensor => (ffi::WB_SCALE_TENSOR, 0, 0),
            ScaleLayout::Channel => (ffi::WB_SCALE_CHANNEL, 0, 0),
            ScaleLayout::Block { rows, cols } => (ffi::WB_SCALE_BLOCK, rows, cols),
        }
    }

    /// How many scales this layout gives a destination of `shape`, by the header's count, so that the plan
    /// owns a buffer of exactly that size. Whether the layout fits the shape and the dtypes is the library's
    /// to check (`Shape` for a block of a destination that is not 2-D, `Inval` for a block with one side 0,
    /// which is counted here as 1 only to stay defined).
    fn count(self, shape: &[i64]) -> usize {
        let extent = |dims: &[i64]| dims.iter().map(|&e| e.max(0) as usize).product::<usize>();
        match self {
            ScaleLayout::None => 0,
            ScaleLayout::Tensor => 1,
            ScaleLayout::Channel => shape.first().map_or(1, |&rows| rows.max(0) as usize),
            ScaleLayout::Block { rows, cols } => {
                let (r, c) = shape.split_last().map_or((1, 1), |(&last, rest)| (extent(rest), last.max(0) as usize));
                let (rows, cols) = if (rows, cols) == (0, 0) { (128, 128) } else { (rows.max(1), cols.max(1)) };
                ((r + rows as usize - 1) / rows as usize) * ((c + cols as usize - 1) / cols as usize)
            }
        }
    }
}

/// `wb_plan_info`: what a run copies, and how the plan's arms went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanInfo {
    pub dests: u32,
    /// Region copies per run, of which `copies_2d` strided.
    pub copies: u32,
    pub copies_2d: u32,
    pub bytes: u64,
    pub pad_bytes: u64,
    /// Arms made, of which GPU arms, of which a wait found copied by the GPU (the header's "GPU arms").
    pub arms: u64,
    pub gpu_arms: u64,
    pub gpu_arms_claimed: u64,
}

/// Destinations resolved once into region copies from a topic's shards (`wb_plan_create`), run for each
/// version. It owns its host buffers ([`Plan::output`], [`Plan::scales`]), so that no copy ever lands in freed
/// memory.
pub struct Plan {
    raw: NonNull<ffi::wb_plan>,
    outputs: Vec<Vec<u64>>, // u64 words: aligned for every dtype
    scales: Vec<Vec<f32>>,
    dests: Vec<SliceDest>,
    _topic: Arc<TopicHandle>,
}

// SAFETY: a plan is read-only once made; runs write only its own buffers, through &mut self.
unsafe impl Send for Plan {}

impl Plan {
    /// Checks every destination against the topic's complete layout and allocates its buffers, scales too.
    /// Errors: those of `wb_plan_create`: `NotFound`, `State` before the layout is complete, `Dtype` (parts of
    /// different dtypes, a dtype that is neither theirs nor a conversion of it, a scale layout that does not fit
    /// the pair), `Shape` (boxes and shapes that do not fit; `ScaleLayout::Block` on a destination that is not
    /// 2-D), `Inval`.
    pub fn new(topic: &Topic, dests: &[SliceDest]) -> Result<Plan> {
        let mut names: Vec<CString> = Vec::new();
        let mut raw_parts = Vec::new();
        let mut raw_dests = Vec::new();
        let mut outputs = Vec::new();
        let mut scales = Vec::new();
        for dest in dests {
            let (scale_layout, block_rows, block_cols) = dest.scale_layout.raw();
            let mut raw = ffi::wb_slice_dest {
                first_part: raw_parts.len() as u32,
                part_count: dest.parts.len() as u32,
                concat_dim: dest.concat_dim,
                dtype: dest.dtype.raw(),
                scale_layout,
                block_rows,
                block_cols,
                ..Default::default()
            };
            raw.ndim = copy_dims(&mut raw.shape, &dest.shape, "a destination")?;
            let bytes = dest.shape.iter().product::<i64>().max(0) as usize * dest.dtype.size();
            let mut buffer = vec![0u64; (bytes + 7) / 8];
            raw.dst = buffer.as_mut_ptr() as *mut std::ffi::c_void;
            raw.dst_bytes = bytes as u64;
            outputs.push(buffer);
            let mut scale = vec![0f32; dest.scale_layout.count(&dest.shape)];
            if dest.scale_layout != ScaleLayout::None {
                raw.scale = scale.as_mut_ptr() as *mut std::ffi::c_void;
                raw.scale_bytes = (scale.len() * std::mem::size_of::<f32>()) as u64;
            }
            scales.push(scale);
            for part in &dest.parts {
                names.push(c_string(part.name.as_bytes())?);
                let mut p =
                    ffi::wb_slice_part { name: names[names.len() - 1].as_ptr(), pad: part.pad, ..Default::default() };
                p.ndim = copy_dims(&mut p.offset, &part.offset, &part.name)?;
                if copy_dims(&mut p.extent, &part.extent, &part.name)? != p.ndim {
                    return Err(Error::Shape(format!("part of '{}': offset and extent differ in length", part.name)));
                }
                raw_parts.push(p);
            }
            raw_dests.push(raw);
        }
        let mut plan = ptr::null_mut();
        check(unsafe {
            ffi::wb_plan_create(
                topic.as_ptr(),
                raw_dests.as_ptr(),
                raw_dests.len() as u32,
                raw_parts.as_ptr(),
                raw_parts.len() as u32,
                &mut plan,
            )
        })?;
        let raw = NonNull::new(plan).expect("wb_plan_create succeeded without a plan");
        Ok(Plan { raw, outputs, scales, dests: dests.to_vec(), _topic: topic.handle() })
    }

    /// Fills the buffers with `snapshot`'s version (a snapshot of the plan's topic). Errors: `Inval` (another
    /// topic's snapshot), `Stale`, `NoCuda`, `Cuda`.
    pub fn run(&mut self, snapshot: &Snapshot) -> Result<()> {
        check(unsafe { ffi::wb_plan_run(self.raw.as_ptr(), snapshot.as_ptr(), ptr::null_mut()) })
    }

    /// Arms the plan for the first version after `after` (the last one the caller loaded; 0: any), leasing it
    /// before it is published (`wb_plan_arm`): when the latest is newer than `after` and can be leased now, that
    /// one, else latest + 1, which the publisher may be writing (an R = 1 update writes it in place all the
    /// same: a lease keeps a begin waiting only once its version is published). [`Armed::wait`] runs the plan
    /// for it once it is published. The arm borrows the plan mutably, so its buffers are read again
    /// ([`Plan::output`]) after the arm drops. Errors: `Inval` (`after` beyond the latest version, or the latest
    /// `WB_VERSION_MAX`: no version can follow), `NotFound` (the topic was removed), `NoSpc` (every lease slot of
    /// the client is held), `NoMem`.
    pub fn arm(&mut self, after: u64) -> Result<Armed<'_>> {
        let mut armed = ptr::null_mut();
        check(unsafe { ffi::wb_plan_arm(self.raw.as_ptr(), after, ptr::null_mut(), &mut armed) })?;
        let raw = NonNull::new(armed).expect("wb_plan_arm succeeded without an arm");
        Ok(Armed { raw: Some(raw), plan: self })
    }

    /// What a run copies, and how the plan's arms went (`wb_plan_get_info`).
    pub fn info(&self) -> Result<PlanInfo> {
        let mut raw = ffi::wb_plan_info::default();
        check(unsafe { ffi::wb_plan_get_info(self.raw.as_ptr(), &mut raw) })?;
        Ok(PlanInfo {
            dests: raw.dests,
            copies: raw.copies,
            copies_2d: raw.copies_2d,
            bytes: raw.bytes,
            pad_bytes: raw.pad_bytes,
            arms: raw.arms,
            gpu_arms: raw.gpu_arms,
            gpu_arms_claimed: raw.gpu_arms_claimed,
        })
    }

    /// Destination `index`'s elements as of the last run. `Error::Dtype` for another element type,
    /// `Error::Inval` for an index out of range.
    pub fn output<T: Element>(&self, index: usize) -> Result<&[T]> {
        let dest = self.dest(index)?;
        if T::DTYPE != dest.dtype {
            return Err(Error::Dtype(format!("destination {index} holds {}, not {}", dest.dtype, T::DTYPE)));
        }
        let len = dest.shape.iter().product::<i64>().max(0) as usize;
        // SAFETY: the buffer holds len elements of T (sized in new), aligned to 8, and lives with self.
        Ok(unsafe { std::slice::from_raw_parts(self.outputs[index].as_ptr() as *const T, len) })
    }

    /// Destination `index`'s bytes as of the last run, whatever its dtype: the way to read dtypes that have no
    /// Rust type (bf16, f16, FP8). `Error::Inval` for an index out of range.
    pub fn output_bytes(&self, index: usize) -> Result<&[u8]> {
        let dest = self.dest(index)?;
        let len = dest.shape.iter().product::<i64>().max(0) as usize * dest.dtype.size();
        // SAFETY: the buffer holds len bytes (sized in new) and lives with self.
        Ok(unsafe { std::slice::from_raw_parts(self.outputs[index].as_ptr() as *const u8, len) })
    }

    /// Destination `index`'s f32 scales as of the last run, laid out as its [`ScaleLayout`] says (empty for
    /// `ScaleLayout::None`). `Error::Inval` for an index out of range.
    pub fn scales(&self, index: usize) -> Result<&[f32]> {
        self.dest(index)?;
        Ok(&self.scales[index])
    }

    fn dest(&self, index: usize) -> Result<&SliceDest> {
        self.dests.get(index).ok_or_else(|| {
            Error::Inval(format!("no destination {index}: the plan has {} destinations", self.dests.len()))
        })
    }
}

impl Drop for Plan {
    fn drop(&mut self) {
        unsafe { ffi::wb_plan_destroy(self.raw.as_ptr()) };
    }
}

/// A [`Plan`]'s run of the first version after one the reader had, leased before that version is published
/// ([`Plan::arm`]): a server's loop arms for the next version while the trainer is still writing it, and
/// [`Armed::wait`] copies it into the plan's buffers as soon as it is published. Until then its lease keeps
/// nothing waiting; from the publish on it pins the version as a [`Snapshot`] would, until the wait hands that
/// snapshot over, or the arm drops, which withdraws it (`wb_armed_release`). It counts as a snapshot of its
/// topic, and borrows the plan mutably, so that nothing reads the buffers it may write.
///
/// ```no_run
/// # fn serve(plan: &mut weightbus::Plan) -> weightbus::Result<()> {
/// let mut seen = 0;
/// loop {
///     let snapshot = plan.arm(seen)?.wait(None)?; // armed before the publish, copied after it
///     seen = snapshot.version();
///     let weight: &[f32] = plan.output(0)?; // version `seen`'s slice
///     println!("version {seen}: {}", weight[0]);
/// } // the snapshot's lease is released when it drops
/// # }
/// ```
///
/// The buffers cannot be read while an arm may still write them:
///
/// ```compile_fail
/// # fn serve(plan: &mut weightbus::Plan) -> weightbus::Result<()> {
/// let mut armed = plan.arm(0)?;
/// let before: &[f32] = plan.output(0)?; // refused: the arm borrows the plan
/// armed.wait(None)?;
/// println!("{}", before[0]);
/// # Ok(()) }
/// ```
pub struct Armed<'a> {
    /// `None` once a wait spent it: the library freed it.
    raw: Option<NonNull<ffi::wb_armed>>,
    plan: &'a mut Plan,
}

// SAFETY: an arm may move between threads; it is not Sync, as the C API wants one thread at a time.
unsafe impl Send for Armed<'_> {}

impl Armed<'_> {
    /// The version armed now (`wb_armed_version`); a version that will not come (the publisher went past it, or an
    /// R >= 2 reader fell so far behind that its record is gone) moves the arm within [`Armed::wait`]. Errors:
    /// `State` once a wait spent the arm.
    pub fn version(&self) -> Result<u64> {
        let raw = self.raw.ok_or_else(spent)?;
        let mut version = 0;
        check(unsafe { ffi::wb_armed_version(raw.as_ptr(), &mut version) })?;
        Ok(version)
    }

    /// Whether this is a GPU arm (`wb_armed_on_stream`): its copies are enqueued on its stream already, to run the
    /// moment the version is published, and the stream is held until then (or until the arm is withdrawn or its
    /// hold runs out: see the header's "GPU arms");
    /// `false`: [`Armed::wait`] runs them. Errors: `State` once a wait spent the arm.
    pub fn on_stream(&self) -> Result<bool> {
        let raw = self.raw.ok_or_else(spent)?;
        let mut flag: c_int = 0;
        check(unsafe { ffi::wb_armed_on_stream(raw.as_ptr(), &mut flag) })?;
        Ok(flag != 0)
    }

    /// Waits at most `timeout` (`None`: no limit; zero: a look) until the armed version is published, runs the
    /// plan for it into the plan's buffers and returns its snapshot (`wb_armed_wait`). `Error::Timeout` keeps the
    /// arm: wait again, or drop it. Any other return spends it: later calls are `Error::State`. Errors:
    /// `Timeout` (the message names what the topic waits for), `Dirty` (the version was published but the topic
    /// is still left half-written by a publisher that died), `NotFound` (the topic was removed), `BrokerGone`,
    /// and those of [`Plan::run`] (its snapshot released: some buffers may hold the version's bytes), `State`
    /// (spent).
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<Snapshot> {
        // Taken out first: the call frees the arm on every return but a timeout.
        let raw = self.raw.take().ok_or_else(spent)?;
        let mut snapshot = ptr::null_mut();
        let rc = unsafe { ffi::wb_armed_wait(raw.as_ptr(), timeout_ms(timeout), &mut snapshot) };
        if rc == ffi::WB_E_TIMEOUT {
            self.raw = Some(raw);
        }
        check(rc)?;
        Ok(Snapshot::new(snapshot, self.plan._topic.clone()))
    }
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        if let Some(raw) = self.raw.take() {
            // Fails only for NULL.
            unsafe { ffi::wb_armed_release(raw.as_ptr()) };
        }
    }
}

fn spent() -> Error {
    Error::State("the arm was spent by a wait that did not time out: arm the plan again".into())
}

/// How [`split`] divides a dimension: `Even` needs it divisible (vLLM's and Megatron's tensor parallelism);
/// `Chunk` is torch.chunk and DTensor `Shard(d)` (FSDP): chunks of ceil(size / ranks), the last short or empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitMode {
    Even,
    Chunk,
}

/// Rank `rank` of `ranks`'s (offset, extent) of a dimension of `size` (`wb_split`).
pub fn split(size: i64, rank: u32, ranks: u32, mode: SplitMode) -> Result<(i64, i64)> {
    let mode = match mode {
        SplitMode::Even => ffi::WB_SPLIT_EVEN,
        SplitMode::Chunk => ffi::WB_SPLIT_CHUNK,
    };
    let (mut offset, mut extent) = (0, 0);
    check(unsafe { ffi::wb_split(size, rank, ranks, mode, &mut offset, &mut extent) })?;
    Ok((offset, extent))
}

/// vLLM's vocabulary split (`wb_split_vocab`): (offset, extent, padded_extent) of rank `rank`.
pub fn split_vocab(vocab: i64, pad_to: i64, rank: u32, ranks: u32) -> Result<(i64, i64, i64)> {
    let (mut offset, mut extent, mut padded) = (0, 0, 0);
    check(unsafe { ffi::wb_split_vocab(vocab, pad_to, rank, ranks, &mut offset, &mut extent, &mut padded) })?;
    Ok((offset, extent, padded))
}

/// vLLM's fused QKV parts of rank `rank` (`wb_parts_qkv`): q, k and v, to concatenate along dimension 0.
#[allow(clippy::too_many_arguments)]
pub fn parts_qkv(
    names: [&str; 3],
    heads: i64,
    kv_heads: i64,
    head_dim: i64,
    hidden: i64,
    rank: u32,
    ranks: u32,
) -> Result<Vec<SlicePart>> {
    let c = names.iter().map(|n| c_string(n.as_bytes())).collect::<Result<Vec<_>>>()?;
    let mut out = [ffi::wb_slice_part::default(); 3];
    check(unsafe {
        ffi::wb_parts_qkv(
            c[0].as_ptr(),
            c[1].as_ptr(),
            c[2].as_ptr(),
            heads,
            kv_heads,
            head_dim,
            hidden,
            rank,
            ranks,
            out.as_mut_ptr(),
        )
    })?;
    Ok(names.iter().zip(&out).map(|(name, p)| part_from_raw(name, p)).collect())
}

/// vLLM's MergedColumnParallelLinear parts of rank `rank` (`wb_parts_merged`): rows of each `names[i]`
/// (`[rows[i], cols]`), to concatenate along dimension 0.
pub fn parts_merged(names: &[&str], rows: &[i64], cols: i64, rank: u32, ranks: u32) -> Result<Vec<SlicePart>> {
    if names.len() != rows.len() {
        return Err(Error::Inval(format!("{} names but {} row counts", names.len(), rows.len())));
    }
    let c = names.iter().map(|n| c_string(n.as_bytes())).collect::<Result<Vec<_>>>()?;
    let pointers: Vec<_> = c.iter().map(|n| n.as_ptr()).collect();
    let mut out = vec![ffi::wb_slice_part::default(); names.len()];
    check(unsafe {
        ffi::wb_parts_merged(pointers.as_ptr(), rows.as_ptr(), names.len() as u32, cols, rank, ranks, out.as_mut_ptr())
    })?;
    Ok(names.iter().zip(&out).map(|(name, p)| part_from_raw(name, p)).collect())
}

/// The part with the caller's name (the raw part points at a string freed by now).
fn part_from_raw(name: &str, raw: &ffi::wb_slice_part) -> SlicePart {
    let n = raw.ndim as usize;
    SlicePart {
        name: name.to_string(),
        offset: raw.offset[..n].to_vec(),
        extent: raw.extent[..n].to_vec(),
        pad: raw.pad,
    }
}
