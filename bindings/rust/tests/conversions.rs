//! Plans that convert on the way (the header's "Conversions"): bf16 and f32 tensors into f8e4m3 with block,
//! channel and tensor scales, and f32 into bf16, each checked bit for bit against a reference written here from
//! the header's definition; and the destinations that the library refuses, with the error each one gets.
mod common;

use std::time::Duration;

use common::Broker;
use weightbus::{DType, Error, Plan, ScaleLayout, SliceDest, SlicePart, TensorSpec, Topic};

const SECOND: Option<Duration> = Some(Duration::from_secs(5));
const ROWS: usize = 3;
const COLS: usize = 130; // two full 64-column blocks and a partial one of 2
const E4M3_MAX: f32 = 448.0;
const FP8_NAN: u8 = 0x7F;

/// xorshift64: the same values every run, without a crate.
struct Numbers(u64);

impl Numbers {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A finite f32 of either sign with a full mantissa and a binary exponent in [-spread, spread).
    fn float(&mut self, spread: i32) -> f32 {
        let bits = self.next();
        let mantissa = 1.0 + (bits & 0x7F_FFFF) as f32 / (1 << 23) as f32;
        let exponent = ((bits >> 23) % (2 * spread as u64)) as i32 - spread;
        let sign = if bits >> 63 == 1 { -1.0 } else { 1.0 };
        sign * mantissa * 2f32.powi(exponent)
    }
}

/// bf16 "w" [3, 130]: block (1, 1) of 2 x 64 blocks (row 2, columns 64..128) zeros of both signs, (2, 129) a
/// NaN; the rest spread over 2^-12..2^12, so that small values of a block land on FP8 subnormals and zero.
fn w_bits() -> Vec<u16> {
    let mut numbers = Numbers(0x9E37_79B9_7F4A_7C15);
    let mut w: Vec<u16> = (0..ROWS * COLS).map(|_| (numbers.float(12).to_bits() >> 16) as u16).collect();
    for c in 64..128 {
        w[2 * COLS + c] = if c % 2 == 0 { 0x0000 } else { 0x8000 };
    }
    w[2 * COLS + 129] = 0x7FC0;
    w
}

/// f32 "x" [3, 130]: spread over 2^-20..2^20, with +inf at (0, 3) (row 0's channel scale is then +inf).
fn x_values() -> Vec<f32> {
    let mut numbers = Numbers(0xD1B5_4A32_D192_ED03);
    let mut x: Vec<f32> = (0..ROWS * COLS).map(|_| numbers.float(20)).collect();
    x[3] = f32::INFINITY;
    x
}

/// f32 "y" [4, 33] for bf16: ties both ways, overflow to inf, a NaN with a payload and its sign, -inf, -0,
/// f32 subnormals; then ordinary values.
fn y_values() -> Vec<f32> {
    let mut numbers = Numbers(0x2545_F491_4F6C_DD1D);
    let mut y: Vec<f32> = (0..4 * 33).map(|_| numbers.float(30)).collect();
    let specials = [
        1.0 + 2f32.powi(-8),       // halfway between 1.0 and the next bf16: to 1.0 (even)
        1.0 + 3.0 * 2f32.powi(-8), // halfway, odd below: up
        f32::MAX,
        f32::from_bits(0xFFC0_0001),
        f32::NEG_INFINITY,
        -0.0,
        f32::from_bits(0x0000_8000), // subnormal, halfway, even below: down to 0
        f32::from_bits(0x8001_8000), // subnormal, halfway, odd below: up
    ];
    y[..specials.len()].copy_from_slice(&specials);
    y
}

fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits((bits as u32) << 16)
}

/// The value of e4m3fn code `code` below 0x80 (0.EEEE.MMM, bias 7, no infinities, 0.1111.111 NaN), in f64 so
/// that the distances below are exact where they decide.
fn e4m3_value(code: u8) -> f64 {
    let (exponent, mantissa) = (code >> 3, code & 7);
    match exponent {
        15 if mantissa == 7 => f64::NAN,
        0 => mantissa as f64 / 8.0 * 2f64.powi(-6),
        _ => (1.0 + mantissa as f64 / 8.0) * 2f64.powi(exponent as i32 - 7),
    }
}

/// The e4m3fn code nearest q, found among the codes of q's sign, ties to the even code; NaN is 0x7F.
fn to_e4m3(q: f32) -> u8 {
    if q.is_nan() {
        return FP8_NAN;
    }
    let (sign, q) = (if q.is_sign_negative() { 0x80 } else { 0 }, q.abs() as f64);
    let mut best = 0u8;
    for code in 1..0x7Fu8 {
        let (d, d_best) = ((e4m3_value(code) - q).abs(), (e4m3_value(best) - q).abs());
        if d < d_best || (d == d_best && code % 2 == 0) {
            best = code;
        }
    }
    best | sign
}

/// f32 to bf16, to nearest even; NaN is 0x7FFF.
fn to_bf16(x: f32) -> u16 {
    if x.is_nan() {
        return 0x7FFF;
    }
    let bits = x.to_bits();
    ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) as u16
}

/// Quantizes `x` (`rows` x `cols`, row-major) into e4m3fn with one scale per `group_rows` x `group_cols` group:
/// (codes, scales), as the header defines them.
fn e4m3_reference(x: &[f32], cols: usize, group_rows: usize, group_cols: usize) -> (Vec<u8>, Vec<f32>) {
    let rows = x.len() / cols;
    let groups_across = (cols + group_cols - 1) / group_cols;
    let group = |i: usize| (i / cols / group_rows) * groups_across + (i % cols) / group_cols;
    let groups = ((rows + group_rows - 1) / group_rows) * groups_across;
    let mut amax = vec![0f32; groups];
    for (i, &v) in x.iter().enumerate() {
        let a = &mut amax[group(i)];
        *a = if a.is_nan() || v.is_nan() { f32::NAN } else { a.max(v.abs()) };
    }
    // A NaN group's scale is the one NaN 0x7FFFFFFF (the header), whatever NaN the division here gives.
    let scale = |a: f32| match a {
        _ if a.is_nan() => f32::from_bits(0x7FFF_FFFF),
        _ if a == 0.0 => 1.0,
        _ => a / E4M3_MAX,
    };
    let scales: Vec<f32> = amax.iter().map(|&a| scale(a)).collect();
    let codes = x.iter().enumerate().map(|(i, &v)| to_e4m3((v / scales[group(i)]).clamp(-E4M3_MAX, E4M3_MAX)));
    (codes.collect(), scales)
}

/// Scales compared by their bits: NaN equals NaN, and -0 would not equal 0.
fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// Publishes version 1 of "w", "x", "y", and "i" (i32 [2, 2]) and "cube" (bf16 [2, 2, 2]) for the refusals;
/// returns a reader of it.
fn publish_model(client: &weightbus::Client) -> Topic {
    let publisher = client.create_topic("model", 2).unwrap();
    publisher
        .alloc(&[
            TensorSpec { name: "w", dtype: DType::BF16, shape: &[ROWS as i64, COLS as i64] },
            TensorSpec { name: "x", dtype: DType::F32, shape: &[ROWS as i64, COLS as i64] },
            TensorSpec { name: "y", dtype: DType::F32, shape: &[4, 33] },
            TensorSpec { name: "i", dtype: DType::I32, shape: &[2, 2] },
            TensorSpec { name: "cube", dtype: DType::BF16, shape: &[2, 2, 2] },
        ])
        .unwrap();
    let mut update = publisher.begin(SECOND).unwrap();
    let w: Vec<u8> = w_bits().iter().flat_map(|b| b.to_ne_bytes()).collect();
    update.tensor("w").unwrap().write(&w).unwrap();
    update.tensor("x").unwrap().as_mut_slice::<f32>().unwrap().copy_from_slice(&x_values());
    update.tensor("y").unwrap().as_mut_slice::<f32>().unwrap().copy_from_slice(&y_values());
    update.publish(b"").unwrap();
    let reader = client.open_topic("model").unwrap();
    reader.wait(0, SECOND).unwrap();
    reader
}

fn whole(name: &str, shape: &[i64]) -> SlicePart {
    SlicePart { name: name.into(), offset: vec![0; shape.len()], extent: shape.to_vec(), pad: 0 }
}

fn dest(dtype: DType, part: SlicePart, scale_layout: ScaleLayout) -> SliceDest {
    SliceDest { dtype, shape: part.extent.clone(), parts: vec![part], concat_dim: 0, scale_layout }
}

#[test]
fn fp8_destinations_match_the_reference_in_every_scale_layout() {
    let broker = Broker::start();
    let client = broker.attach();
    let reader = publish_model(&client);
    let shape = [ROWS as i64, COLS as i64];
    let x_rows_1_2 = SlicePart { name: "x".into(), offset: vec![1, 0], extent: vec![2, COLS as i64], pad: 0 };
    let dests = [
        dest(DType::F8E4M3, whole("w", &shape), ScaleLayout::Block { rows: 2, cols: 64 }),
        dest(DType::F8E4M3, whole("w", &shape), ScaleLayout::Block { rows: 0, cols: 0 }),
        dest(DType::F8E4M3, whole("x", &shape), ScaleLayout::Channel),
        dest(DType::F8E4M3, x_rows_1_2, ScaleLayout::Tensor),
    ];
    let mut plan = Plan::new(&reader, &dests).unwrap();
    plan.run(&reader.acquire(1, SECOND).unwrap()).unwrap();

    let w: Vec<f32> = w_bits().into_iter().map(bf16_to_f32).collect();
    let x = x_values();
    let expected = [
        e4m3_reference(&w, COLS, 2, 64),
        e4m3_reference(&w, COLS, 128, 128),
        e4m3_reference(&x, COLS, 1, COLS),
        e4m3_reference(&x[COLS..], COLS, 2, COLS),
    ];
    for (i, (codes, scales)) in expected.iter().enumerate() {
        assert_eq!(plan.output_bytes(i).unwrap(), &codes[..], "destination {i}'s codes");
        assert_eq!(bits(plan.scales(i).unwrap()), bits(scales), "destination {i}'s scales");
    }
    // The cases the values were chosen for: block (1, 1) zeros (scale 1, signed zeros), block (1, 2) NaN,
    // row 0 of x +inf (its scale +inf, the inf NaN).
    assert_eq!(plan.scales(0).unwrap().len(), 6);
    assert_eq!(plan.scales(0).unwrap()[4], 1.0);
    assert_eq!(&plan.output_bytes(0).unwrap()[2 * COLS + 64..2 * COLS + 66], &[0x00, 0x80]);
    assert!(plan.scales(0).unwrap()[5].is_nan());
    assert_eq!(plan.scales(1).unwrap().len(), 2);
    assert_eq!(plan.scales(2).unwrap()[0], f32::INFINITY);
    assert_eq!(plan.output_bytes(2).unwrap()[3], FP8_NAN);
    assert_eq!(plan.info().unwrap().bytes, (3 * ROWS * COLS + 2 * COLS) as u64, "FP8 bytes written, no scales");
    assert!(matches!(plan.output::<u8>(0), Err(Error::Dtype(_))), "FP8 reads as bytes");
    assert!(matches!(plan.scales(4), Err(Error::Inval(_))));
    assert!(matches!(plan.output_bytes(4), Err(Error::Inval(_))));
}

#[test]
fn f32_converts_to_bf16_rounding_to_nearest_even() {
    let broker = Broker::start();
    let client = broker.attach();
    let reader = publish_model(&client);
    let mut plan = Plan::new(&reader, &[dest(DType::BF16, whole("y", &[4, 33]), ScaleLayout::None)]).unwrap();
    plan.run(&reader.acquire(1, SECOND).unwrap()).unwrap();
    let got: Vec<u16> = plan.output_bytes(0).unwrap().chunks(2).map(|b| u16::from_ne_bytes([b[0], b[1]])).collect();
    let expected: Vec<u16> = y_values().into_iter().map(to_bf16).collect();
    assert_eq!(got, expected);
    assert_eq!(&got[..8], &[0x3F80, 0x3F82, 0x7F80, 0x7FFF, 0xFF80, 0x8000, 0x0000, 0x8002]);
    assert!(plan.scales(0).unwrap().is_empty());
}

#[test]
fn destinations_that_do_not_convert_as_asked_are_refused() {
    let broker = Broker::start();
    let client = broker.attach();
    let reader = publish_model(&client);
    let refused = |d: SliceDest| Plan::new(&reader, &[d]).err().expect("refused");
    let i32_to_fp8 = refused(dest(DType::F8E4M3, whole("i", &[2, 2]), ScaleLayout::Tensor));
    assert!(matches!(&i32_to_fp8, Error::Dtype(m) if m.contains("i32")), "{i32_to_fp8}");
    let fp8_without_scales = refused(dest(DType::F8E4M3, whole("x", &[3, 130]), ScaleLayout::None));
    assert!(matches!(fp8_without_scales, Error::Dtype(_)), "{fp8_without_scales}");
    let bf16_with_scales = refused(dest(DType::BF16, whole("x", &[3, 130]), ScaleLayout::Tensor));
    assert!(matches!(bf16_with_scales, Error::Dtype(_)), "{bf16_with_scales}");
    let block_of_3d = refused(dest(DType::F8E4M3, whole("cube", &[2, 2, 2]), ScaleLayout::Block { rows: 0, cols: 0 }));
    assert!(matches!(&block_of_3d, Error::Shape(m) if m.contains("2-D")), "{block_of_3d}");
    let half_a_block = refused(dest(DType::F8E4M3, whole("w", &[3, 130]), ScaleLayout::Block { rows: 2, cols: 0 }));
    assert!(matches!(half_a_block, Error::Inval(_)), "{half_a_block}");
}
