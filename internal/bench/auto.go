package bench

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
)

// AutoUse is how the server chose the strategy of an auto row's
// transfers in one round, tallied from each transfer's report: which
// strategy moved the bytes (sender.strategy) and what Report.auto says
// about the choice. A transfer split over parallel streams counts once
// per part, as each part is a Download of its own.
type AutoUse struct {
	Transfers int `json:"transfers"`
	// Strategies counts transfers by the strategy that moved them,
	// explorations included ("mmap": 3).
	Strategies map[string]int `json:"strategies"`
	// Explorations are the transfers the server sent with another
	// strategy than its pick, to keep measuring it; Explored counts them
	// by strategy.
	Explorations int            `json:"explorations"`
	Explored     map[string]int `json:"explored,omitempty"`
	// ChosenByServer counts the reports that say the server chose
	// (Report.auto.chosen_by_server). Fewer than Transfers means the
	// server did not say how it chose.
	ChosenByServer int `json:"chosen_by_server"`
	// Inline counts transfers whose bytes came inside the offer.
	Inline int `json:"inline,omitempty"`
	// SizeClasses are the size classes the reports named, in the order
	// first seen.
	SizeClasses []string `json:"size_classes,omitempty"`
}

// add tallies one Download's report: its parts when it has any, else
// itself.
func (u *AutoUse) add(rep *ferryv1.Report) {
	if parts := rep.GetParts(); len(parts) > 0 {
		for _, p := range parts {
			u.add(p)
		}
		return
	}
	st := strategyName(rep.GetSender().GetStrategy())
	u.Transfers++
	u.Strategies = inc(u.Strategies, st)
	if rep.GetSender().GetInline() {
		u.Inline++
	}
	a := rep.GetAuto()
	if a.GetChosenByServer() {
		u.ChosenByServer++
	}
	if a.GetExploration() {
		u.Explorations++
		u.Explored = inc(u.Explored, st)
	}
	if c := a.GetSizeClass(); c != "" && !slices.Contains(u.SizeClasses, c) {
		u.SizeClasses = append(u.SizeClasses, c)
	}
}

// merge adds o's counts to u.
func (u *AutoUse) merge(o *AutoUse) {
	u.Transfers += o.Transfers
	u.Explorations += o.Explorations
	u.ChosenByServer += o.ChosenByServer
	u.Inline += o.Inline
	for k, v := range o.Strategies {
		u.Strategies = incBy(u.Strategies, k, v)
	}
	for k, v := range o.Explored {
		u.Explored = incBy(u.Explored, k, v)
	}
	for _, c := range o.SizeClasses {
		if !slices.Contains(u.SizeClasses, c) {
			u.SizeClasses = append(u.SizeClasses, c)
		}
	}
}

func inc(m map[string]int, k string) map[string]int { return incBy(m, k, 1) }

func incBy(m map[string]int, k string, n int) map[string]int {
	if m == nil {
		m = map[string]int{}
	}
	m[k] += n
	return m
}

// Pick is the strategy that moved most of the round's transfers that
// were not explorations ("" for none): the server's pick as the round
// saw it. A tie goes to the name first in alphabetical order.
func (u *AutoUse) Pick() string {
	if u == nil {
		return ""
	}
	best, most := "", 0
	for _, k := range slices.Sorted(maps.Keys(u.Strategies)) {
		if n := u.Strategies[k] - u.Explored[k]; n > most {
			best, most = k, n
		}
	}
	return best
}

// String is the round's cell of the choice table: the pick, how many
// transfers were explorations and with what, and whether the server
// said how it chose: "mmap", "read_write; 4 of 200 explored (mmap 3,
// splice 1)", "explored only; 1 of 1 explored (splice 1)", "mmap; not
// reported".
func (u *AutoUse) String() string {
	if u == nil || u.Transfers == 0 {
		return "—"
	}
	s := u.Pick()
	if s == "" {
		s = "explored only"
	}
	if others := u.Transfers - u.Explorations - u.Strategies[u.Pick()] + u.Explored[u.Pick()]; others > 0 {
		// Transfers neither of the pick nor explorations: the pick moved
		// within the round.
		s += fmt.Sprintf(" (%s)", countList(u.Strategies, u.Explored))
	}
	if u.Inline > 0 {
		s += fmt.Sprintf(", %d of %d inline", u.Inline, u.Transfers)
	}
	if u.Explorations > 0 {
		s += fmt.Sprintf("; %d of %d explored (%s)", u.Explorations, u.Transfers, countList(u.Explored, nil))
	}
	if u.ChosenByServer < u.Transfers {
		s += "; not reported"
		if u.ChosenByServer > 0 {
			s = fmt.Sprintf("%s for %d", s, u.Transfers-u.ChosenByServer)
		}
	}
	return s
}

// countList is "mmap 3, splice 1": the counts of m less those of minus,
// most first, then by name; zero counts left out.
func countList(m, minus map[string]int) string {
	type kv struct {
		k string
		n int
	}
	var kvs []kv
	for k, n := range m {
		if n -= minus[k]; n > 0 {
			kvs = append(kvs, kv{k, n})
		}
	}
	slices.SortFunc(kvs, func(a, b kv) int {
		return cmp.Or(cmp.Compare(b.n, a.n), strings.Compare(a.k, b.k))
	})
	parts := make([]string, len(kvs))
	for i, e := range kvs {
		parts[i] = fmt.Sprintf("%s %d", e.k, e.n)
	}
	return strings.Join(parts, ", ")
}

// mostPicked is the pick most rounds of p saw, "" when none recorded
// one; a tie goes to the pick seen first.
func mostPicked(p *PathResult) string {
	if p == nil {
		return ""
	}
	count, best := map[string]int{}, ""
	for _, s := range p.Samples {
		pick := s.Auto.Pick()
		if s.Err != "" || pick == "" {
			continue
		}
		count[pick]++
		if count[pick] > count[best] {
			best = pick
		}
	}
	return best
}

// AutoPolicy is one ferryd's auto policy as GetCapabilities reported it:
// the picks after each round, and the whole policy at the end.
type AutoPolicy struct {
	// Server names the ferryd: "ferryd" or "ferryd --auto=fixed".
	Server       string      `json:"server"`
	Objective    string      `json:"objective,omitempty"`
	ExploreShare float64     `json:"explore_share"`
	Seed         string      `json:"seed,omitempty"`
	Classes      []AutoClass `json:"classes,omitempty"` // at the end of the run
	// Rounds holds each round's picks by size class, read after it.
	Rounds []RoundPicks `json:"rounds,omitempty"`
	// Note says why there is nothing else: the ferryd reports no policy.
	Note string `json:"note,omitempty"`
}

// AutoClass is one size class of a policy.
type AutoClass struct {
	Class string `json:"class"` // "[16 MiB, 256 MiB) loopback", as reports name it
	// Network is where the receiver is: "loopback" or "network"; the
	// server measures the two apart.
	Network string         `json:"network,omitempty"`
	Pick    string         `json:"pick"`
	Reason  string         `json:"reason,omitempty"`
	Costs   []StrategyCost `json:"costs,omitempty"`
	// LeftOutForSteal counts the live figures the server left out
	// because the hypervisor took the machine while they ran.
	LeftOutForSteal uint64 `json:"left_out_for_steal,omitempty"`
}

// StrategyCost is what the server measured for one strategy in a class.
type StrategyCost struct {
	Strategy  string  `json:"strategy"`
	Samples   uint64  `json:"samples"`
	GBps      float64 `json:"gbps"`
	CPUPerGiB float64 `json:"cpu_s_per_gib,omitempty"`
	Failed    bool    `json:"failed,omitempty"`
}

// RoundPicks is a policy's pick in each size class after one round.
type RoundPicks struct {
	Round int               `json:"round"`
	Picks map[string]string `json:"picks"` // size class → strategy
}

// classLabel names a size class as the reports do: "[8 MiB, ∞)
// loopback", and "[16 MiB, ∞) loopback, to a file" for a class the
// server keeps apart per sink.
func classLabel(minBytes, below uint64, network, sink string) string {
	hi := "∞"
	if below > 0 {
		hi = FormatSize(int64(below))
	}
	label := strings.TrimSpace("[" + FormatSize(int64(minBytes)) + ", " + hi + ") " + network)
	if sink != "" {
		label += ", to a " + sink
	}
	return label
}

// policyOf converts what GetCapabilities said; nil policy: a note.
func policyOf(server string, p *ferryv1.AutoPolicy) *AutoPolicy {
	ap := &AutoPolicy{Server: server}
	if p == nil {
		ap.Note = "this ferryd reports no auto policy (GetCapabilities has no auto)"
		return ap
	}
	ap.Objective, ap.ExploreShare, ap.Seed = p.GetObjective(), p.GetExploreShare(), p.GetSeed()
	for _, c := range p.GetClasses() {
		ac := AutoClass{Class: classLabel(c.GetMinBytes(), c.GetBelowBytes(), c.GetNetwork(), c.GetSink()), Network: c.GetNetwork(),
			Pick: strategyName(c.GetPick()), Reason: c.GetReason(), LeftOutForSteal: c.GetLeftOutForSteal()}
		for _, sc := range c.GetCosts() {
			ac.Costs = append(ac.Costs, StrategyCost{Strategy: strategyName(sc.GetStrategy()), Samples: sc.GetSamples(),
				GBps: sc.GetBytesPerSecond() / 1e9, CPUPerGiB: sc.GetCpuSecondsPerGib(), Failed: sc.GetFailed()})
		}
		ap.Classes = append(ap.Classes, ac)
	}
	return ap
}

// record reads the policy after a round: it keeps the round's picks and
// replaces the rest with the latest.
func (ap *AutoPolicy) record(round int, now *AutoPolicy) {
	rounds := ap.Rounds
	*ap = *now
	ap.Rounds = rounds
	if len(now.Classes) == 0 {
		return
	}
	rp := RoundPicks{Round: round, Picks: map[string]string{}}
	for _, c := range now.Classes {
		rp.Picks[c.Class] = c.Pick
	}
	ap.Rounds = append(ap.Rounds, rp)
}

// snapshotPolicies asks each ferryd of the rounds for its auto policy,
// untimed, after round (0: before the first).
func (p *peers) snapshotPolicies(ctx context.Context, round int, res *Results) {
	for _, n := range p.policyNodes() {
		var ap *AutoPolicy
		for _, have := range res.AutoPolicies {
			if have.Server == n.label {
				ap = have
			}
		}
		if ap == nil {
			ap = &AutoPolicy{Server: n.label}
			res.AutoPolicies = append(res.AutoPolicies, ap)
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		caps, err := n.client.Capabilities(cctx)
		cancel()
		if err != nil {
			ap.Note = "GetCapabilities failed: " + err.Error()
			continue
		}
		ap.record(round, policyOf(n.label, caps.GetAuto()))
	}
}
