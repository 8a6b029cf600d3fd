package validate

import (
	"fmt"
	"strings"
)

// GoBuild is the `go build` command of a Dockerfile stage.
type GoBuild struct {
	Env    []string // NAME=value: the stage's ENV, then the command's own assignments
	Args   []string // the words after "go", starting with "build"
	Output string   // the -o argument
	Line   int
}

// GoBuild returns the stage's one RUN that is a `go build`, its words
// split as /bin/sh would and ${VAR} substituted from the stage's ARG
// defaults overridden by args (--build-arg). Shell operators (; && | $())
// are refused: the command must be a single one to be reproducible here.
func (s *Stage) GoBuild(args map[string]string) (GoBuild, error) {
	vars, b := map[string]string{}, GoBuild{}
	found := 0
	for _, in := range s.Instructions {
		switch in.Cmd {
		case "ARG", "ENV":
			name, val, _ := strings.Cut(in.Args, "=")
			if v, ok := args[name]; ok && in.Cmd == "ARG" {
				val = v
			}
			vars[name] = val
			if in.Cmd == "ENV" {
				b.Env = append(b.Env, name+"="+val)
			}
		case "RUN":
			words, err := shellWords(in.Args, vars)
			if err != nil {
				return b, fmt.Errorf("line %d: %w", in.Line, err)
			}
			env, cmd := splitAssignments(words)
			if len(cmd) < 2 || cmd[0] != "go" || cmd[1] != "build" {
				continue
			}
			found++
			b.Env, b.Args, b.Line = append(b.Env, env...), cmd[1:], in.Line
		}
	}
	if found != 1 {
		return b, fmt.Errorf("want one RUN go build, found %d", found)
	}
	for i, a := range b.Args {
		if a == "-o" && i+1 < len(b.Args) {
			b.Output = b.Args[i+1]
		}
	}
	return b, nil
}

// splitAssignments splits leading NAME=value words off a command.
func splitAssignments(words []string) (env, cmd []string) {
	for i, w := range words {
		name, _, ok := strings.Cut(w, "=")
		if !ok || name == "" || strings.ContainsAny(name, "-/.") {
			return words[:i], words[i:]
		}
	}
	return words, nil
}

// shellWords splits s into words like /bin/sh: blanks separate words,
// quotes group, ${VAR} and $VAR expand outside single quotes.
func shellWords(s string, vars map[string]string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote == 0 && (c == ' ' || c == '\t'):
			if inWord {
				words, inWord = append(words, w.String()), false
				w.Reset()
			}
			continue
		case quote == 0 && strings.IndexByte(";&|<>`()\\", c) >= 0:
			return nil, fmt.Errorf("shell operator %q in %q", c, s)
		case (quote == 0 || quote == c) && (c == '"' || c == '\''):
			quote ^= c
		case c == '$' && quote != '\'':
			name, n, err := varRef(s[i+1:])
			if err != nil {
				return nil, err
			}
			v, ok := vars[name]
			if !ok {
				return nil, fmt.Errorf("$%s is not an ARG or ENV of the stage", name)
			}
			w.WriteString(v)
			i += n
		default:
			w.WriteByte(c)
		}
		inWord = true
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// varRef reads NAME or {NAME} after a $ and returns it and its length.
func varRef(s string) (string, int, error) {
	if strings.HasPrefix(s, "{") {
		end := strings.IndexByte(s, '}')
		if end < 0 || strings.ContainsAny(s[1:end], ":-+?") {
			return "", 0, fmt.Errorf("unsupported ${...} in %q", s)
		}
		return s[1:end], end + 1, nil
	}
	n := 0
	for n < len(s) && (s[n] == '_' || 'A' <= s[n] && s[n] <= 'Z' || 'a' <= s[n] && s[n] <= 'z' || n > 0 && '0' <= s[n] && s[n] <= '9') {
		n++
	}
	if n == 0 {
		return "", 0, fmt.Errorf("bare $ in %q", s)
	}
	return s[:n], n, nil
}
