package weightbus

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Plans that convert on the way (the header's "Conversions"): bf16 and f32 tensors into f8e4m3 with block,
// channel and tensor scales, and f32 into bf16, each checked bit for bit against a reference written here from
// the header's definition; and the destinations that the library refuses, with the error each one gets.

const (
	convRows = 3
	convCols = 130 // two full 64-column blocks and a partial one of 2
	e4m3Max  = float32(448)
	fp8NaN   = 0x7F
)

// numbers is xorshift64: the same values every run.
type numbers uint64

func (n *numbers) next() uint64 {
	*n ^= *n << 13
	*n ^= *n >> 7
	*n ^= *n << 17
	return uint64(*n)
}

// float is a finite float32 of either sign with a full mantissa and a binary exponent in [-spread, spread).
func (n *numbers) float(spread int) float32 {
	bits := n.next()
	mantissa := 1 + float32(bits&0x7FFFFF)/float32(1<<23)
	exponent := int((bits>>23)%uint64(2*spread)) - spread
	if bits>>63 == 1 {
		mantissa = -mantissa
	}
	return mantissa * float32(math.Ldexp(1, exponent))
}

// wBits is bf16 "w" [3, 130]: block (1, 1) of 2 x 64 blocks (row 2, columns 64..128) zeros of both signs,
// (2, 129) a NaN; the rest spread over 2^-12..2^12, so that small values of a block land on FP8 subnormals
// and zero.
func wBits() []uint16 {
	n := numbers(0x9E3779B97F4A7C15)
	w := make([]uint16, convRows*convCols)
	for i := range w {
		w[i] = uint16(math.Float32bits(n.float(12)) >> 16)
	}
	for c := 64; c < 128; c++ {
		w[2*convCols+c] = uint16(c%2) << 15
	}
	w[2*convCols+129] = 0x7FC0
	return w
}

// xValues is f32 "x" [3, 130]: spread over 2^-20..2^20, with +inf at (0, 3) (row 0's channel scale is then
// +inf).
func xValues() []float32 {
	n := numbers(0xD1B54A32D192ED03)
	x := make([]float32, convRows*convCols)
	for i := range x {
		x[i] = n.float(20)
	}
	x[3] = float32(math.Inf(1))
	return x
}

// yValues is f32 "y" [4, 33] for bf16: ties both ways, overflow to inf, a NaN with a payload and its sign,
// -inf, -0, f32 subnormals; then ordinary values.
func yValues() []float32 {
	n := numbers(0x2545F4914F6CDD1D)
	y := make([]float32, 4*33)
	for i := range y {
		y[i] = n.float(30)
	}
	copy(y, []float32{
		1 + 1.0/256,     // halfway between 1.0 and the next bf16: to 1.0 (even)
		1 + 3.0/256,     // halfway, odd below: up
		math.MaxFloat32, // to +inf
		math.Float32frombits(0xFFC00001),
		float32(math.Inf(-1)),
		float32(math.Copysign(0, -1)),
		math.Float32frombits(0x00008000), // subnormal, halfway, even below: down to 0
		math.Float32frombits(0x80018000), // subnormal, halfway, odd below: up
	})
	return y
}

func bf16ToF32(bits uint16) float32 {
	return math.Float32frombits(uint32(bits) << 16)
}

// e4m3Value is the value of e4m3fn code below 0x80 (0.EEEE.MMM, bias 7, no infinities, 0.1111.111 NaN), in
// float64 so that the distances below are exact where they decide.
func e4m3Value(code uint8) float64 {
	exponent, mantissa := int(code>>3), float64(code&7)
	switch {
	case exponent == 15 && mantissa == 7:
		return math.NaN()
	case exponent == 0:
		return mantissa / 8 * math.Ldexp(1, -6)
	default:
		return (1 + mantissa/8) * math.Ldexp(1, exponent-7)
	}
}

// toE4M3 is the e4m3fn code nearest q, found among the codes of q's sign, ties to the even code; NaN is 0x7F.
func toE4M3(q float32) uint8 {
	if q != q {
		return fp8NaN
	}
	sign, magnitude := uint8(0), math.Abs(float64(q))
	if math.Signbit(float64(q)) {
		sign = 0x80
	}
	best := uint8(0)
	for code := uint8(1); code < 0x7F; code++ {
		d, dBest := math.Abs(e4m3Value(code)-magnitude), math.Abs(e4m3Value(best)-magnitude)
		if d < dBest || (d == dBest && code%2 == 0) {
			best = code
		}
	}
	return best | sign
}

// toBF16 is f32 to bf16, to nearest even; NaN is 0x7FFF.
func toBF16(x float32) uint16 {
	if x != x {
		return 0x7FFF
	}
	bits := math.Float32bits(x)
	return uint16((bits + 0x7FFF + (bits>>16)&1) >> 16)
}

// e4m3Reference quantizes x (cols wide, row-major) into e4m3fn with one scale per groupRows x groupCols group:
// the codes and scales as the header defines them.
func e4m3Reference(x []float32, cols, groupRows, groupCols int) ([]uint8, []float32) {
	across := (cols + groupCols - 1) / groupCols
	group := func(i int) int { return i/cols/groupRows*across + i%cols/groupCols }
	amax := make([]float32, (len(x)/cols+groupRows-1)/groupRows*across)
	for i, v := range x {
		a := &amax[group(i)]
		switch {
		case *a != *a || v != v:
			*a = float32(math.NaN())
		case float32(math.Abs(float64(v))) > *a:
			*a = float32(math.Abs(float64(v)))
		}
	}
	scales := make([]float32, len(amax))
	for g, a := range amax {
		switch {
		case a != a: // a NaN group's scale is the one NaN 0x7FFFFFFF (the header)
			scales[g] = math.Float32frombits(0x7FFFFFFF)
		case a == 0:
			scales[g] = 1
		default:
			scales[g] = a / e4m3Max
		}
	}
	codes := make([]uint8, len(x))
	for i, v := range x {
		q := v / scales[group(i)]
		if q > e4m3Max {
			q = e4m3Max
		} else if q < -e4m3Max {
			q = -e4m3Max
		}
		codes[i] = toE4M3(q)
	}
	return codes, scales
}

// bitsOf compares scales by their bits: NaN equals NaN, and -0 would not equal 0.
func bitsOf(values []float32) []uint32 {
	bits := make([]uint32, len(values))
	for i, v := range values {
		bits[i] = math.Float32bits(v)
	}
	return bits
}

// publishConversionModel publishes version 1 of "w", "x", "y", and "i" (i32 [2, 2]) and "cube" (bf16
// [2, 2, 2]) for the refusals, and returns a reader of it and a snapshot of the version.
func publishConversionModel(t *testing.T) (*Topic, *Snapshot) {
	_, client := attachedClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	publisher := must(client.CreateTopic("model", 2))(t)
	t.Cleanup(func() { publisher.Close() })
	err := publisher.Alloc(
		TensorSpec{Name: "w", DType: DTypeBF16, Shape: []int64{convRows, convCols}},
		TensorSpec{Name: "x", DType: DTypeF32, Shape: []int64{convRows, convCols}},
		TensorSpec{Name: "y", DType: DTypeF32, Shape: []int64{4, 33}},
		TensorSpec{Name: "i", DType: DTypeI32, Shape: []int64{2, 2}},
		TensorSpec{Name: "cube", DType: DTypeBF16, Shape: []int64{2, 2, 2}},
	)
	if err != nil {
		t.Fatal(err)
	}
	update := must(publisher.Begin(ctx))(t)
	w := must(must(update.Tensor("w"))(t).Bytes())(t)
	for i, bits := range wBits() {
		binary.LittleEndian.PutUint16(w[2*i:], bits)
	}
	copy(must(Slice[float32](must(update.Tensor("x"))(t)))(t), xValues())
	copy(must(Slice[float32](must(update.Tensor("y"))(t)))(t), yValues())
	must(update.Publish(nil))(t)
	reader := must(client.OpenTopic("model"))(t)
	t.Cleanup(func() { reader.Close() })
	snapshot := must(reader.Acquire(ctx, 1))(t)
	t.Cleanup(func() { snapshot.Close() })
	return reader, snapshot
}

func whole(name string, shape ...int64) SlicePart {
	return SlicePart{Name: name, Offset: make([]int64, len(shape)), Extent: shape}
}

func convertingDest(dtype DType, part SlicePart, layout ScaleLayout) SliceDest {
	return SliceDest{DType: dtype, Shape: part.Extent, Parts: []SlicePart{part}, ScaleLayout: layout}
}

func TestFP8DestinationsMatchTheReferenceInEveryScaleLayout(t *testing.T) {
	reader, snapshot := publishConversionModel(t)
	block := convertingDest(DTypeF8E4M3, whole("w", convRows, convCols), ScaleBlock)
	block.BlockRows, block.BlockCols = 2, 64
	rows12 := SlicePart{Name: "x", Offset: []int64{1, 0}, Extent: []int64{2, convCols}}
	plan := must(NewPlan(reader,
		block,
		convertingDest(DTypeF8E4M3, whole("w", convRows, convCols), ScaleBlock), // 128 x 128
		convertingDest(DTypeF8E4M3, whole("x", convRows, convCols), ScaleChannel),
		convertingDest(DTypeF8E4M3, rows12, ScaleTensor),
	))(t)
	defer plan.Close()
	if err := plan.Run(snapshot); err != nil {
		t.Fatal(err)
	}

	w := make([]float32, convRows*convCols)
	for i, bits := range wBits() {
		w[i] = bf16ToF32(bits)
	}
	x := xValues()
	expected := []struct {
		x                    []float32
		groupRows, groupCols int
	}{{w, 2, 64}, {w, 128, 128}, {x, 1, convCols}, {x[convCols:], 2, convCols}}
	for i, e := range expected {
		codes, scales := e4m3Reference(e.x, convCols, e.groupRows, e.groupCols)
		if got := plan.Output(i); !reflect.DeepEqual(got, codes) {
			t.Errorf("destination %d's codes:\n got  %x\n want %x", i, got, codes)
		}
		if got := plan.Scales(i); !reflect.DeepEqual(bitsOf(got), bitsOf(scales)) {
			t.Errorf("destination %d's scales: got %v, want %v", i, got, scales)
		}
	}
	// The cases the values were chosen for: block (1, 1) zeros (scale 1, signed zeros), block (1, 2) NaN, row 0
	// of x +inf (its scale +inf, the inf NaN).
	blockScales := plan.Scales(0)
	if len(blockScales) != 6 || blockScales[4] != 1 || blockScales[5] == blockScales[5] || len(plan.Scales(1)) != 2 {
		t.Errorf("block scales %v, 128 x 128 scales %v", blockScales, plan.Scales(1))
	}
	if zeros := plan.Output(0)[2*convCols+64 : 2*convCols+66]; !reflect.DeepEqual(zeros, []byte{0x00, 0x80}) {
		t.Errorf("signed zeros: %x", zeros)
	}
	if plan.Scales(2)[0] != float32(math.Inf(1)) || plan.Output(2)[3] != fp8NaN {
		t.Errorf("row 0 of x: scale %v, inf as %#x", plan.Scales(2)[0], plan.Output(2)[3])
	}
	if bytes := must(plan.Info())(t).Bytes; bytes != 3*convRows*convCols+2*convCols {
		t.Errorf("Info().Bytes %d: the FP8 bytes written, scales aside", bytes)
	}
}

func TestF32ConvertsToBF16RoundingToNearestEven(t *testing.T) {
	reader, snapshot := publishConversionModel(t)
	plan := must(NewPlan(reader, convertingDest(DTypeBF16, whole("y", 4, 33), ScaleNone)))(t)
	defer plan.Close()
	if err := plan.Run(snapshot); err != nil {
		t.Fatal(err)
	}
	out := plan.Output(0)
	got, want := make([]uint16, len(out)/2), []uint16{}
	for i := range got {
		got[i] = binary.LittleEndian.Uint16(out[2*i:])
	}
	for _, y := range yValues() {
		want = append(want, toBF16(y))
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("bf16:\n got  %x\n want %x", got, want)
	}
	if specials := []uint16{0x3F80, 0x3F82, 0x7F80, 0x7FFF, 0xFF80, 0x8000, 0x0000, 0x8002}; !reflect.DeepEqual(got[:8], specials) {
		t.Errorf("the special values: got %x, want %x", got[:8], specials)
	}
	if len(plan.Scales(0)) != 0 {
		t.Errorf("ScaleNone has scales: %v", plan.Scales(0))
	}
}

func TestDestinationsThatDoNotConvertAsAskedAreRefused(t *testing.T) {
	reader, _ := publishConversionModel(t)
	halfABlock := convertingDest(DTypeF8E4M3, whole("w", convRows, convCols), ScaleBlock)
	halfABlock.BlockRows = 2
	refusals := []struct {
		what    string
		dest    SliceDest
		code    Code
		message string
	}{
		{"i32 to FP8", convertingDest(DTypeF8E4M3, whole("i", 2, 2), ScaleTensor), ErrDType, "i32"},
		{"FP8 without scales", convertingDest(DTypeF8E4M3, whole("x", convRows, convCols), ScaleNone), ErrDType, "scale"},
		{"bf16 with scales", convertingDest(DTypeBF16, whole("x", convRows, convCols), ScaleTensor), ErrDType, "scale"},
		{"a block of a 3-D destination", convertingDest(DTypeF8E4M3, whole("cube", 2, 2, 2), ScaleBlock), ErrShape, "2-D"},
		{"a block with one side 0", halfABlock, ErrInval, "block"},
	}
	for _, r := range refusals {
		plan, err := NewPlan(reader, r.dest)
		var e *Error
		if !errors.Is(err, r.code) || !errors.As(err, &e) || !strings.Contains(e.Message, r.message) {
			t.Errorf("%s: %v, want %v naming %q", r.what, err, r.code, r.message)
		}
		if plan != nil {
			plan.Close()
		}
	}
}
