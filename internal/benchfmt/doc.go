// Package benchfmt is the arithmetic and the chart that Ferry's two
// benchmark reports share: `ferry compare` (cmd/ferry) and ferry-bench
// (internal/bench). Both take medians over runs, scale figures per GiB
// and draw SVG bar charts; doing it here once keeps their figures and
// their charts the same by construction.
//
// Its contract:
//
//   - Median, MedianOf and Percentile never reorder their input; none of
//     them, nor GBps and PerGiB, fails: no samples, no bytes or no time
//     give 0, so a caller that must tell "none" from 0 checks the length
//     first.
//   - GBps is decimal (1e9 bytes per second); PerGiB is binary (per
//     1 << 30 bytes). Callers name the unit they print.
//   - SVG draws a Chart: panels of horizontal bars, each bar with its
//     label on the left and the caller's text at its end, under an x axis
//     whose step is 1, 2 or 5 times a power of ten. Panels with the same
//     Unit share one scale, so that equal lengths are equal values. Every
//     string in a Chart is text, escaped here; the output is a
//     self-contained SVG document: no scripts, no fonts beyond the generic
//     sans-serif family.
//
// It does not measure, choose what to chart or how to word a figure
// (callers format each bar's text), nor write files; it has no state and
// uses the standard library only.
package benchfmt
