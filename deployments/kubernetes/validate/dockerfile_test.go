package validate

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// checkDockerfile returns what is wrong with df as ferryd's image recipe.
func checkDockerfile(df *Dockerfile, goMinor string) []error {
	var errs problems
	build := df.Stage("build")
	if len(df.Stages) < 2 || build == nil || build == df.Final() {
		return []error{fmt.Errorf("want a stage named build (FROM ... AS build) and a final stage, got %d stages", len(df.Stages))}
	}
	if !strings.HasPrefix(build.Base, "golang:"+goMinor) {
		errs.addf("build stage is FROM %s, want golang:%s (go.mod's Go)", build.Base, goMinor)
	}
	checkNoDownloads(&errs, df)
	checkGoBuild(&errs, build)
	checkFinalStage(&errs, df.Final(), build)
	return errs
}

var download = regexp.MustCompile(`(?i)\b(curl|wget)\b|https?://`)

func checkNoDownloads(errs *problems, df *Dockerfile) {
	for _, st := range df.Stages {
		for _, in := range st.Instructions {
			if (in.Cmd == "RUN" || in.Cmd == "ADD") && download.MatchString(in.Args) {
				errs.addf("line %d: %s downloads something; build from the context only", in.Line, in.Cmd)
			}
		}
	}
}

func checkGoBuild(errs *problems, build *Stage) {
	gb, err := build.GoBuild(map[string]string{"VERSION": testVersion})
	if err != nil {
		errs.addf("build stage: %v", err)
		return
	}
	if !slices.Contains(gb.Env, "CGO_ENABLED=0") {
		errs.addf("line %d: go build without CGO_ENABLED=0 (env %q)", gb.Line, gb.Env)
	}
	if !slices.Contains(gb.Args, "-trimpath") {
		errs.addf("line %d: go build without -trimpath", gb.Line)
	}
	ldflags := ""
	for i, a := range gb.Args {
		if v, ok := strings.CutPrefix(a, "-ldflags="); ok {
			ldflags = v
		} else if a == "-ldflags" && i+1 < len(gb.Args) {
			ldflags = gb.Args[i+1]
		}
	}
	f := strings.Fields(ldflags)
	if !slices.Contains(f, "-s") || !slices.Contains(f, "-w") || !slices.Contains(f, "main.version="+testVersion) {
		errs.addf("line %d: -ldflags %q, want -s -w -X main.version=${VERSION}", gb.Line, ldflags)
	}
	if gb.Output == "" || gb.Args[len(gb.Args)-1] != "./cmd/ferryd" {
		errs.addf("line %d: want go build ... -o OUT ./cmd/ferryd", gb.Line)
	}
}

// checkFinalStage checks the image: a minimal base, nothing that needs a
// shell, a numeric non-root USER and ENTRYPOINT ["/ferryd"] copied from
// the build's output.
func checkFinalStage(errs *problems, final, build *Stage) {
	switch {
	case strings.HasPrefix(final.Base, "gcr.io/distroless/static"):
	case final.Base == "scratch":
		checkScratch(errs, final)
	default:
		errs.addf("final stage is FROM %s, want gcr.io/distroless/static-debian12:nonroot or scratch", final.Base)
	}
	for _, in := range final.Instructions {
		if in.Cmd == "RUN" || in.Cmd == "SHELL" || in.Cmd == "ONBUILD" {
			errs.addf("line %d: %s in the final stage: the image has no shell", in.Line, in.Cmd)
		}
	}
	checkUser(errs, final)
	if ep, ok := final.Last("ENTRYPOINT"); !ok {
		errs.addf("final stage has no ENTRYPOINT")
	} else if words, err := ep.ExecForm(); err != nil {
		errs.addf("%v", err)
	} else if !slices.Equal(words, []string{"/ferryd"}) {
		errs.addf("line %d: ENTRYPOINT %q, want [\"/ferryd\"]", ep.Line, words)
	}
	if cmd, ok := final.Last("CMD"); ok {
		if _, err := cmd.ExecForm(); err != nil {
			errs.addf("%v", err)
		}
	}
	checkExpose(errs, final)
	gb, err := build.GoBuild(nil)
	want := "--from=build " + gb.Output + " /ferryd"
	if err == nil && !slices.ContainsFunc(final.All("COPY"), func(in Instruction) bool {
		return strings.Join(append(slices.Clone(in.Flags), in.Args), " ") == want
	}) {
		errs.addf("final stage lacks COPY %s", want)
	}
}

func checkUser(errs *problems, final *Stage) {
	user, ok := final.Last("USER")
	if !ok {
		errs.addf("final stage has no USER: it would run as root")
		return
	}
	for _, id := range strings.Split(user.Args, ":") {
		n, err := strconv.Atoi(id)
		if err != nil {
			errs.addf("line %d: USER %s: want numeric uid:gid, so runAsNonRoot can verify it", user.Line, user.Args)
			return
		}
		if n != UID {
			errs.addf("line %d: USER %s, want %d:%d (non-root, as the manifests)", user.Line, user.Args, UID, UID)
			return
		}
	}
}

func checkExpose(errs *problems, final *Stage) {
	var ports []string
	for _, in := range final.All("EXPOSE") {
		ports = append(ports, strings.Fields(in.Args)...)
	}
	for _, p := range []string{"7070", "7071"} {
		if !slices.Contains(ports, p) && !slices.Contains(ports, p+"/tcp") {
			errs.addf("final stage does not EXPOSE %s", p)
		}
	}
}

func checkScratch(errs *problems, final *Stage) {
	var copied []string
	for _, in := range final.All("COPY") {
		copied = append(copied, in.Args)
	}
	all := strings.Join(copied, "\n")
	if !strings.Contains(all, "/etc/passwd") || !strings.Contains(all, "ca-certificates") {
		errs.addf("FROM scratch needs /etc/passwd and the CA certificates copied in")
	}
}

// goMinor returns the main module's go directive as major.minor.
func goMinor(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no go directive in go.mod")
	}
	return string(m[1])
}

func TestDockerfile(t *testing.T) {
	for _, err := range checkDockerfile(dockerfile(t), goMinor(t)) {
		t.Error(err)
	}
	if v := goMinor(t); !strings.HasPrefix(runtime.Version(), "go"+v) {
		t.Logf("note: testing with %s, the image builds with golang:%s", runtime.Version(), v)
	}
}

// TestDockerfileCheckCatchesMistakes breaks the real Dockerfile one way
// at a time and expects checkDockerfile or the parser to object.
func TestDockerfileCheckCatchesMistakes(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, old, new, want string }{
		{"cgo", "CGO_ENABLED=0 ", "", "CGO_ENABLED=0"},
		{"no trimpath", "-trimpath ", "", "-trimpath"},
		{"unstamped", "-X main.version=${VERSION}", "", "-ldflags"},
		{"named user", "USER 65532:65532", "USER nonroot", "numeric"},
		{"root user", "USER 65532:65532", "USER 0:0", "non-root"},
		{"shell entrypoint", `ENTRYPOINT ["/ferryd"]`, "ENTRYPOINT /ferryd", "shell form"},
		{"run in final", "USER 65532:65532", "RUN chmod 0755 /ferryd\nUSER 65532:65532", "no shell"},
		{"copy elsewhere", "-o /out/ferryd", "-o /out/ferry", "COPY --from=build /out/ferry /ferryd"},
		{"fat base", "FROM gcr.io/distroless/static-debian12:nonroot", "FROM debian:12", "debian:12"},
		{"one stage", " AS build", "", "stage named build"},
		{"chained build", "-o /out/ferryd ./cmd/ferryd", "-o /out/ferryd ./cmd/ferryd && ls", "shell operator"},
		{"download", "COPY . .", "RUN curl -sSfL https://example.com/ferryd -o /out/ferryd", "downloads"},
		{"no expose", "EXPOSE 7070 7071", "EXPOSE 7070", "EXPOSE 7071"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(string(src), tc.old, tc.new, 1)
			if text == string(src) {
				t.Fatalf("mutation %q not applied", tc.old)
			}
			var got []error
			df, err := ParseDockerfile(strings.NewReader(text))
			if err != nil {
				got = []error{err}
			} else {
				got = checkDockerfile(df, "1.26")
			}
			t.Log(got)
			if !strings.Contains(fmt.Sprint(got), tc.want) {
				t.Errorf("checkDockerfile(%s) = %v, want an error mentioning %q", tc.name, got, tc.want)
			}
		})
	}
}

func TestParseDockerfile(t *testing.T) {
	df, err := ParseDockerfile(strings.NewReader(`# syntax=docker/dockerfile:1
ARG BASE=x
FROM golang:1 AS build
RUN --mount=type=cache,target=/c \
    # a comment inside a continuation
    A=1 go build \
      -ldflags "-X main.v=$V" -o /o ./cmd/x
FROM scratch
COPY --from=build /o /x
ENTRYPOINT ["/x"]
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(df.GlobalArgs) != 1 || len(df.Stages) != 2 || df.Stages[0].Name != "build" || df.Final().Base != "scratch" {
		t.Fatalf("ParseDockerfile = %+v", df)
	}
	run := df.Stages[0].Instructions[0]
	if run.Line != 4 || !slices.Equal(run.Flags, []string{"--mount=type=cache,target=/c"}) {
		t.Errorf("RUN = %+v", run)
	}
	df.Stages[0].Instructions = append([]Instruction{{Cmd: "ARG", Args: "V=dev"}}, df.Stages[0].Instructions...)
	gb, err := df.Stages[0].GoBuild(map[string]string{"V": "1.2"})
	want := []string{"build", "-ldflags", "-X main.v=1.2", "-o", "/o", "./cmd/x"}
	if err != nil || !slices.Equal(gb.Args, want) || !slices.Equal(gb.Env, []string{"A=1"}) || gb.Output != "/o" {
		t.Errorf("GoBuild = %+v, %v; want args %q, env [A=1]", gb, err, want)
	}
}
