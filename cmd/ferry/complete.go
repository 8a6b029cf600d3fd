package main

import (
	"context"
	"strings"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/spf13/cobra"
)

// Remote-path completion asks the server: ListFiles of the directory the
// word typed so far names. It gives up quietly, with no completions and no
// message, when the server cannot be reached or refuses.
const (
	completeTimeout = 3 * time.Second
	completeMax     = 5000 // entries read at most (five pages of the server's default)
)

// completeRemote completes the first n positional arguments as remote
// paths (a later one, such as pull's DEST, as a local file), directories
// with a trailing / and no space after them; dirsOnly leaves out what is
// not a directory (ls). It dials as the flags already on the line say
// (--server, the TLS and token flags), falling back to FERRY_*.
func completeRemote(c *common, n int, dirsOnly bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) >= n {
			return nil, cobra.ShellCompDirectiveDefault // local paths
		}
		_ = applyEnv(cmd.Flags()) // a bad FERRY_* value: complete with what parsed
		ctx, cancel := context.WithTimeout(context.Background(), completeTimeout)
		defer cancel()
		names, err := remoteNames(ctx, c, toComplete, dirsOnly)
		if err != nil || len(names) == 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		directive := cobra.ShellCompDirectiveNoFileComp
		for _, name := range names {
			if strings.HasSuffix(name, "/") {
				directive |= cobra.ShellCompDirectiveNoSpace
			}
		}
		return names, directive
	}
}

// remoteNames lists the directory part of typed (up to its last /, or the
// root) and returns the paths that start with typed, directories with a
// trailing /. Names a shell could not take as one word (a newline, a tab,
// any other non-printable character) are left out.
func remoteNames(ctx context.Context, c *common, typed string, dirsOnly bool) ([]string, error) {
	dir := ""
	if i := strings.LastIndex(typed, "/"); i >= 0 {
		dir = typed[:i]
	}
	cl, err := c.dial()
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	req := &ferryv1.ListFilesRequest{Path: dir}
	var names []string
	for seen := 0; seen < completeMax; {
		resp, err := cl.API().ListFiles(ctx, req)
		if err != nil {
			return nil, err
		}
		for _, e := range resp.GetEntries() {
			name := e.GetPath()
			isDir := e.GetType() == ferryv1.FileType_FILE_TYPE_DIRECTORY
			if !strings.HasPrefix(name, typed) || needsQuote(name) || dirsOnly && !isDir {
				continue
			}
			if isDir {
				name += "/"
			}
			names = append(names, name)
		}
		seen += len(resp.GetEntries())
		if resp.GetNextPageToken() == "" {
			break
		}
		req.PageToken = resp.GetNextPageToken()
	}
	return names, nil
}
