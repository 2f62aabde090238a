// Checked output for every command: files are written whole or not at all, and a failed write to
// standard output (a full disk, a closed descriptor) is an error, never a silent success.
#pragma once

#include <string>

namespace rematch::cli {

// Writes `text` to `path` whole or not at all (io::write_file_atomically: a unique temporary
// beside it, every write checked, renamed over it; removed on failure and on SIGINT, SIGTERM,
// SIGHUP; a device such as /dev/stdout written in place). Throws InputError naming the path and
// the system's reason (a directory, a missing directory, no permission, no space).
void write_file_atomically(const std::string& path, const std::string& text);

// Throws InputError naming `path` when a later write_file_atomically(path, ...) cannot succeed
// (its directory is missing or not writable, or `path` is a directory); nothing is left behind.
// For outputs written at the end of a long run (--checkpoint, --report), checked up front.
void check_writable(const std::string& path, const std::string& what);

// Throws InputError when standard output is closed (so nothing written there could be seen).
void require_stdout();

// Flushes and closes standard output; the reason ("No space left on device") when that fails,
// else an empty string. Called once, after the command has written everything.
std::string close_stdout();

}  // namespace rematch::cli
