package weightbus

import (
	"context"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"
)

// Two ranks publish their halves of "w" (f32[4, 2]) as one version; a reader's plan copies column 1 across both.
func TestTwoRanksPublishOneVersionAndAPlanReadsAcrossThem(t *testing.T) {
	broker, first := attachedClient(t)
	second := broker.attach(t)
	t.Cleanup(func() { second.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ranks := []*Topic{must(first.CreateRank("m", 0, 2, 2))(t), must(second.CreateRank("m", 1, 2, 2))(t)}
	if _, err := second.CreateRank("m", 1, 3, 2); !errors.Is(err, ErrInval) {
		t.Fatalf("CreateRank with other ranks: %v", err)
	}
	for r, topic := range ranks {
		shard := ShardSpec{Name: "w", DType: DTypeF32, LogicalShape: []int64{4, 2}, Offset: []int64{int64(2 * r), 0}, Extent: []int64{2, 2}}
		if err := topic.AllocShards(shard); err != nil {
			t.Fatal(err)
		}
	}
	for _, topic := range ranks {
		if err := topic.SealRank(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for r, topic := range ranks {
		update := must(topic.Begin(ctx))(t)
		values := must(Slice[float32](must(update.Shard("w", 0))(t)))(t)
		for i := range values {
			values[i] = float32(4*r + i)
		}
		if _, err := update.Shard("w", 1); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a shard this rank lacks: %v", err)
		}
		if v := must(update.Publish(nil))(t); v != 1 {
			t.Fatalf("rank %d published version %d", r, v)
		}
	}
	reader := must(first.OpenTopic("m"))(t)
	defer reader.Close()
	if v := must(reader.Wait(ctx, 0))(t); v != 1 {
		t.Fatalf("waited for version %d", v)
	}
	info := must(reader.Info())(t)
	rank := must(reader.RankInfo(1))(t)
	if info.Ranks != 2 || !info.LayoutComplete || rank.Rank != 1 || !rank.Sealed || rank.Published != 1 {
		t.Fatalf("info %+v, rank 1 %+v", info, rank)
	}
	if _, err := reader.RankInfo(2); !errors.Is(err, ErrInval) {
		t.Fatalf("RankInfo(2): %v", err)
	}
	if box := must(reader.ShardBox("w", 1, 0))(t); !reflect.DeepEqual(box.Offset, []int64{2, 0}) ||
		!reflect.DeepEqual(box.Extent, []int64{2, 2}) || box.Replicated || box.DType != DTypeF32 {
		t.Fatalf("ShardBox: %+v", box)
	}
	if _, err := reader.ShardBox("w", 1, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ShardBox(w, 1, 1): %v", err)
	}
	snapshot := must(reader.Acquire(ctx, 1))(t)
	defer snapshot.Close()
	if got := must(Slice[float32](must(snapshot.Shard("w", 1, 0))(t)))(t); !reflect.DeepEqual(got, []float32{4, 5, 6, 7}) {
		t.Fatalf("rank 1's shard: %v", got)
	}
	column := SliceDest{DType: DTypeF32, Shape: []int64{4, 1}, Parts: []SlicePart{{Name: "w", Offset: []int64{0, 1}, Extent: []int64{4, 1}}}}
	plan := must(NewPlan(reader, column))(t)
	defer plan.Close()
	if err := plan.Run(snapshot); err != nil {
		t.Fatal(err)
	}
	out := plan.Output(0)
	got := make([]float32, 4)
	for i := range got {
		got[i] = math.Float32frombits(uint32(out[4*i]) | uint32(out[4*i+1])<<8 | uint32(out[4*i+2])<<16 | uint32(out[4*i+3])<<24)
	}
	if !reflect.DeepEqual(got, []float32{1, 3, 5, 7}) || must(plan.Info())(t).Bytes != 16 {
		t.Fatalf("column 1: %v", got)
	}
	column.DType = DTypeF16
	if _, err := NewPlan(reader, column); !errors.Is(err, ErrDType) {
		t.Fatalf("a plan of another dtype: %v", err)
	}
}

func TestSplitRowsFollowTheFrameworks(t *testing.T) {
	rows := []struct {
		size           int64
		rank, ranks    int
		mode           uint32
		offset, extent int64
	}{
		{10, 3, 4, SplitChunk, 9, 1},
		{3, 3, 4, SplitChunk, 3, 0},
		{4096, 1, 2, SplitEven, 2048, 2048},
	}
	for _, row := range rows {
		offset, extent, err := Split(row.size, row.rank, row.ranks, row.mode)
		if err != nil || offset != row.offset || extent != row.extent {
			t.Errorf("Split(%d, %d, %d, %d) = %d, %d, %v", row.size, row.rank, row.ranks, row.mode, offset, extent, err)
		}
	}
	if _, _, err := Split(10, 0, 4, SplitEven); !errors.Is(err, ErrShape) {
		t.Errorf("an uneven even split: %v", err)
	}
	if o, e, p, err := SplitVocab(1000, 64, 1, 2); o != 512 || e != 488 || p != 512 || err != nil {
		t.Errorf("SplitVocab: %d %d %d %v", o, e, p, err)
	}
	qkv := must(PartsQKV("q", "k", "v", 32, 8, 128, 4096, 1, 2))(t)
	if qkv[0].Name != "q" || qkv[0].Offset[0] != 2048 || qkv[1].Extent[0] != 512 {
		t.Errorf("PartsQKV: %+v", qkv)
	}
	merged := must(PartsMerged([]string{"gate", "up"}, []int64{8, 8}, 4, 1, 2))(t)
	if merged[1].Name != "up" || !reflect.DeepEqual(merged[1].Offset, []int64{4, 0}) {
		t.Errorf("PartsMerged: %+v", merged)
	}
	if _, err := PartsMerged([]string{"gate"}, []int64{8, 8}, 4, 1, 2); !errors.Is(err, ErrInval) {
		t.Errorf("PartsMerged with mismatched rows: %v", err)
	}
}
