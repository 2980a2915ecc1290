// journald's stream protocol, for processes whose stderr systemd connected
// to the journal (StandardError=journal, the default for services). systemd
// says so with $JOURNAL_STREAM=<dev>:<inode> of that stream (systemd.exec(5)).
//
// On such a stream journald reads a leading "<N>" as the line's syslog
// priority; without one every line is logged at the stream's default (6,
// info), so `journalctl -p warning` would hide warnings.
#pragma once

#include <string_view>

#include "base/errors.h"
#include "base/log.h"

namespace baton {

// True when `fd` is the stream $JOURNAL_STREAM names (same st_dev:st_ino).
bool IsJournalStream(int fd);

// The syslog priority journald files a line of this level under
// (debug 7, info 6, warn 4, error 3).
int JournalPriority(Level l);

// ReopenStderrInJournal (baton/log.h) opens its stream on the socket
// sd_journal_stream_fd(3) uses.

}  // namespace baton
