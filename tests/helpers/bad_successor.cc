// A successor that misbehaves on the control channel, for the bad-input
// tests. Usage: bad_successor MODE   (MODE as below; extra args ignored)
//   garbage        bytes that are no frame at all
//   oversize       a header declaring 16 MiB
//   truncated      half a frame, then close
//   wrong-version  a well-formed Hello speaking protocol [9,9]
//   wrong-pid      a Hello claiming another pid
//   unknown        an envelope with no known message
//   handover       a Handover frame carrying a descriptor (a successor never may)
//   bare-handover  a Handover frame without its descriptors
// It then waits (up to 30 s) for the supervisor to close the channel.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "protocol/frame.h"

int main(int argc, char** argv) {
  const char* fd_env = std::getenv("BATON_CONTROL_FD");
  if (argc < 2 || fd_env == nullptr) return 2;
  const int fd = std::atoi(fd_env);
  const std::string mode = argv[1];
  std::string out;
  baton::v1::Envelope hello;
  hello.mutable_hello()->mutable_protocol()->set_min(1);
  hello.mutable_hello()->mutable_protocol()->set_max(1);
  hello.mutable_hello()->mutable_state_schema()->set_min(1);
  hello.mutable_hello()->mutable_state_schema()->set_max(1);
  hello.mutable_hello()->set_pid(static_cast<uint32_t>(::getpid()));
  if (mode == "garbage") {
    out = std::string("\xde\xad\xbe\xef garbage, not a frame", 26);
  } else if (mode == "oversize") {
    out = std::string("\x01\x00\x00\x00", 4);
  } else if (mode == "truncated") {
    out = baton::protocol::EncodeFrame(hello)->substr(0, 6);
  } else if (mode == "wrong-version") {
    hello.mutable_hello()->mutable_protocol()->set_min(9);
    hello.mutable_hello()->mutable_protocol()->set_max(9);
    out = *baton::protocol::EncodeFrame(hello);
  } else if (mode == "wrong-pid") {
    hello.mutable_hello()->set_pid(1);
    out = *baton::protocol::EncodeFrame(hello);
  } else if (mode == "unknown") {
    out = std::string("\x00\x00\x00\x03\x9a\x06\x00", 7);
  } else if (mode == "handover" || mode == "bare-handover") {
    baton::v1::Envelope h;
    h.mutable_handover()->set_handoff_id("x");
    auto* e = h.mutable_handover()->add_entries();
    e->set_name("conn");
    e->set_kind("file");
    out = *baton::protocol::EncodeFrame(h);
    if (mode == "handover") {
      // The first byte alone with the descriptor (our stdin), as the protocol sends them.
      char control[CMSG_SPACE(sizeof(int))] = {};
      iovec iov{out.data(), 1};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      const int passed = 0;
      std::memcpy(CMSG_DATA(c), &passed, sizeof(int));
      if (::sendmsg(fd, &msg, 0) != 1) return 3;
      out.erase(0, 1);
    }
  } else {
    return 2;
  }
  if (::write(fd, out.data(), out.size()) != static_cast<ssize_t>(out.size())) return 3;
  if (mode == "truncated") return 0;  // exit mid-frame
  pollfd p{fd, POLLIN, 0};
  char buf[4096];
  for (int i = 0; i < 300; ++i) {
    if (::poll(&p, 1, 100) > 0 && ::read(fd, buf, sizeof(buf)) <= 0) return 0;  // closed by the supervisor
  }
  return 4;
}
