package bench

import (
	"slices"
	"testing"
)

func TestOrder(t *testing.T) {
	if got, want := order(4, 1), []int{0, 1, 2, 3}; !slices.Equal(got, want) {
		t.Errorf("order(4, round 1) = %v, want %v", got, want)
	}
	if got, want := order(4, 2), []int{3, 2, 1, 0}; !slices.Equal(got, want) {
		t.Errorf("order(4, round 2) = %v, want %v", got, want)
	}
	paths := []path{{rows: make([]row, 1)}, {rows: make([]row, 2)}, {rows: make([]row, 1)}}
	if got, want := rowIndex(paths), []int{0, 1, 3}; !slices.Equal(got, want) {
		t.Errorf("rowIndex(1, 2, 1 rows) = %v, want %v", got, want)
	}
}
