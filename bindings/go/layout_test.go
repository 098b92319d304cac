package weightbus

import (
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/weightbus/weightbus/bindings/go/internal/cabi"
)

// goFacts are this package's constants and cgo's struct layouts, keyed as tests/bindings/layout-dump prints
// them. The "init" facts have no counterpart: Go takes the ..._INIT values from the header itself (wbgo.h).
func goFacts() map[string]string {
	facts := map[string]string{
		"const WB_VERSION_MAJOR":    fmt.Sprint(VersionMajor),
		"const WB_VERSION_MINOR":    fmt.Sprint(VersionMinor),
		"const WB_VERSION_PATCH":    fmt.Sprint(VersionPatch),
		"const WB_VERSION":          fmt.Sprint(Version),
		"const WB_VERSION_STRING":   VersionString,
		"const WB_NAME_MAX":         fmt.Sprint(NameMax),
		"const WB_MAX_DIMS":         fmt.Sprint(MaxDims),
		"const WB_MAX_REPLICAS":     fmt.Sprint(MaxReplicas),
		"const WB_METADATA_MAX":     fmt.Sprint(MetadataMax),
		"const WB_ALIGNMENT":        fmt.Sprint(Alignment),
		"const WB_VERSION_MAX":      fmt.Sprint(uint64(VersionMax)),
		"const WB_CUDA_ALIGNMENT":   fmt.Sprint(CUDAAlignment),
		"const WB_MAX_RANKS":        fmt.Sprint(MaxRanks),
		"const WB_SHARD_REPLICATED": fmt.Sprint(ShardReplicated),
		"const WB_SPLIT_EVEN":       fmt.Sprint(SplitEven),
		"const WB_SPLIT_CHUNK":      fmt.Sprint(SplitChunk),
		"const WB_SCALE_NONE":       fmt.Sprint(uint32(ScaleNone)),
		"const WB_SCALE_TENSOR":     fmt.Sprint(uint32(ScaleTensor)),
		"const WB_SCALE_CHANNEL":    fmt.Sprint(uint32(ScaleChannel)),
		"const WB_SCALE_BLOCK":      fmt.Sprint(uint32(ScaleBlock)),
		"const WB_OK":               "0", // a nil error in Go
		"const WB_DEVICE_HOST":      fmt.Sprint(int(DeviceHost)),
		"const WB_DEVICE_CUDA":      fmt.Sprint(int(DeviceCUDA)),
	}
	codes := map[string]Code{
		"INVAL": ErrInval, "NOMEM": ErrNoMem, "NOT_FOUND": ErrNotFound, "EXISTS": ErrExists,
		"NAME_TOO_LONG": ErrNameTooLong, "DTYPE": ErrDType, "SHAPE": ErrShape, "SIZE": ErrSize,
		"NOSPC": ErrNoSpace, "ROLE": ErrRole, "BUSY": ErrBusy, "TIMEOUT": ErrTimeout,
		"BROKER_GONE": ErrBrokerGone, "ABI_MISMATCH": ErrABIMismatch, "DIRTY": ErrDirty, "EXPIRED": ErrExpired,
		"STATE": ErrState, "PERM": ErrPerm, "PROTOCOL": ErrProtocol, "IO": ErrIO, "NO_CUDA": ErrNoCUDA,
		"STALE": ErrStale, "CONNECT": ErrConnect, "CUDA": ErrCUDA,
		"LAYOUT": ErrLayout,
	}
	for name, code := range codes {
		facts["const WB_E_"+name] = fmt.Sprint(int(code))
	}
	dtypes := map[string]DType{
		"BOOL": DTypeBool, "U8": DTypeU8, "I8": DTypeI8, "I16": DTypeI16, "I32": DTypeI32, "I64": DTypeI64,
		"F16": DTypeF16, "BF16": DTypeBF16, "F32": DTypeF32, "F64": DTypeF64, "F8E4M3": DTypeF8E4M3,
		"F8E5M2": DTypeF8E5M2, "U16": DTypeU16, "U32": DTypeU32, "U64": DTypeU64,
	}
	for name, dtype := range dtypes {
		facts["const WB_DTYPE_"+name] = fmt.Sprint(int(dtype))
	}
	for key, bytes := range cabi.Layout() {
		facts[key] = fmt.Sprint(bytes)
	}
	return facts
}

// cFacts runs layout-dump ($WEIGHTBUS_LAYOUT): "kind name value" lines, keyed by "kind name".
func cFacts(t *testing.T) map[string]string {
	exe := os.Getenv("WEIGHTBUS_LAYOUT")
	if exe == "" {
		t.Fatal("set WEIGHTBUS_LAYOUT to the layout-dump binary (tests/bindings/run.sh does)")
	}
	out, err := exec.Command(exe).Output()
	if err != nil {
		t.Fatalf("layout-dump: %v", err)
	}
	facts := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		cut := strings.LastIndexByte(line, ' ')
		if !strings.HasPrefix(line, "init ") {
			facts[line[:cut]] = line[cut+1:]
		}
	}
	return facts
}

func TestConstantsAndLayoutsMatchTheCHeader(t *testing.T) {
	c, g := cFacts(t), goFacts()
	var problems []string
	for key, cValue := range c {
		if goValue, ok := g[key]; !ok {
			problems = append(problems, fmt.Sprintf("%s: %s in C, missing in Go", key, cValue))
		} else if goValue != cValue {
			problems = append(problems, fmt.Sprintf("%s: %s in C, %s in Go", key, cValue, goValue))
		}
	}
	for key := range g {
		if _, ok := c[key]; !ok {
			problems = append(problems, key+": not in the C header")
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		t.Fatalf("package weightbus drifted from weightbus.h:\n%s", strings.Join(problems, "\n"))
	}
}
