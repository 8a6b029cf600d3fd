package validate

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Instruction is one Dockerfile instruction, continuation lines joined.
type Instruction struct {
	Cmd   string   // upper case: FROM, RUN, COPY, ...
	Flags []string // leading --name=value words: --mount=..., --from=build
	Args  string   // the rest, as written
	Line  int      // where it starts, 1-based
}

// Stage is a FROM and the instructions that follow it.
type Stage struct {
	Base, Name   string
	Instructions []Instruction
}

// Dockerfile is a parsed Dockerfile: the ARGs before the first FROM and
// the stages. It understands what deployments/Dockerfile uses, not
// heredocs or a changed escape character.
type Dockerfile struct {
	GlobalArgs []Instruction
	Stages     []Stage
}

// ParseDockerfile parses r.
func ParseDockerfile(r io.Reader) (*Dockerfile, error) {
	df := &Dockerfile{}
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue // comments are dropped inside continuations too
		}
		if cur.Len() == 0 {
			start = n
		}
		if body, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(line)
		if err := df.add(cur.String(), start); err != nil {
			return nil, err
		}
		cur.Reset()
	}
	if cur.Len() > 0 {
		return nil, fmt.Errorf("line %d: continuation at end of file", start)
	}
	return df, sc.Err()
}

func (df *Dockerfile) add(text string, line int) error {
	cmd, rest, _ := strings.Cut(text, " ")
	in := Instruction{Cmd: strings.ToUpper(cmd), Line: line}
	rest = strings.TrimSpace(rest)
	for strings.HasPrefix(rest, "--") {
		flag, after, _ := strings.Cut(rest, " ")
		in.Flags = append(in.Flags, flag)
		rest = strings.TrimSpace(after)
	}
	in.Args = rest
	if strings.Contains(rest, "<<") {
		return fmt.Errorf("line %d: heredocs are not supported", line)
	}
	if in.Cmd == "FROM" {
		f := strings.Fields(rest)
		st := Stage{Base: f[0]}
		if len(f) == 3 && strings.EqualFold(f[1], "AS") {
			st.Name = f[2]
		} else if len(f) != 1 {
			return fmt.Errorf("line %d: FROM %q", line, rest)
		}
		df.Stages = append(df.Stages, st)
		return nil
	}
	if len(df.Stages) == 0 {
		if in.Cmd != "ARG" {
			return fmt.Errorf("line %d: %s before FROM", line, in.Cmd)
		}
		df.GlobalArgs = append(df.GlobalArgs, in)
		return nil
	}
	st := &df.Stages[len(df.Stages)-1]
	st.Instructions = append(st.Instructions, in)
	return nil
}

// Stage returns the stage called name, or nil.
func (df *Dockerfile) Stage(name string) *Stage {
	for i := range df.Stages {
		if df.Stages[i].Name == name {
			return &df.Stages[i]
		}
	}
	return nil
}

// Final returns the last stage, the image.
func (df *Dockerfile) Final() *Stage { return &df.Stages[len(df.Stages)-1] }

// All returns the stage's instructions of kind cmd.
func (s *Stage) All(cmd string) []Instruction {
	var got []Instruction
	for _, in := range s.Instructions {
		if in.Cmd == cmd {
			got = append(got, in)
		}
	}
	return got
}

// Last returns the stage's last instruction of kind cmd: the one that
// counts for USER, ENTRYPOINT and CMD.
func (s *Stage) Last(cmd string) (Instruction, bool) {
	all := s.All(cmd)
	if len(all) == 0 {
		return Instruction{}, false
	}
	return all[len(all)-1], true
}

// ExecForm returns the words of a JSON-array (exec form) instruction; the
// shell form is an error, since it needs /bin/sh.
func (in Instruction) ExecForm() ([]string, error) {
	var words []string
	if !strings.HasPrefix(in.Args, "[") {
		return nil, fmt.Errorf("line %d: %s %s is shell form, which needs /bin/sh", in.Line, in.Cmd, in.Args)
	}
	if err := json.Unmarshal([]byte(in.Args), &words); err != nil {
		return nil, fmt.Errorf("line %d: %s: %w", in.Line, in.Cmd, err)
	}
	return words, nil
}
