// The two upgrades of a "successor that does not accept a handover" test,
// with what capi_probe.c and every SDK's handover probe trace alike: first
// to a successor started with DIR/no-accept, which is handed nothing, then
// to one that accepts again. Each test adds what its own probe traces of
// the refused state. Call them inside ASSERT_NO_FATAL_FAILURE.
#pragma once

#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "tests/unit/capi/probe_cluster.h"

namespace baton::harness {

// Starts `c`; the incumbent (*inc) hands over per `handover` to a successor
// (*suc) that did not call accept: refused with FAILED_PRECONDITION (3),
// the socket still open, nothing taken by the successor's begin. Accepting
// after start is refused too.
inline void UpgradeToASuccessorThatDoesNotAccept(ProbeCluster& c, const char* handover, std::string* inc,
                                                 std::string* suc) {
  ASSERT_TRUE(c.Start()) << c.Log();
  *inc = std::to_string(c.PidOf("serving"));
  EXPECT_TRUE(c.WaitForTrace(std::regex(*inc + " accept_after_start=3\n"), seconds(5))) << c.Trace();
  c.Knob("handover", handover);
  c.Knob("no-accept", "");
  auto r = c.Upgrade();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << c.Log();
  *suc = std::to_string(c.PidOf("warm"));
  ASSERT_TRUE(c.WaitForTrace(std::regex(*suc + " serving\n"), seconds(20))) << c.Trace();
  const std::string t = c.Trace();
  EXPECT_NE(t.find(*inc + " successor_accepts=0\n"), std::string::npos) << t;
  EXPECT_NE(t.find(*inc + " refused_unaccepted=3 open=1\n"), std::string::npos) << t;
  EXPECT_EQ(t.find(*suc + " begin handed"), std::string::npos) << t;
}

// Then `suc`, now the incumbent, sees that the next successor (*next,
// started without DIR/no-accept) accepts.
inline void UpgradeToASuccessorThatAcceptsAgain(ProbeCluster& c, const std::string& suc, std::string* next) {
  c.ClearKnob("no-accept");
  auto r = c.Upgrade();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << c.Log();
  *next = std::to_string(c.LastPidOf("warm\n"));
  ASSERT_NE(*next, suc);
  ASSERT_TRUE(c.WaitForTrace(std::regex(*next + " serving\n"), seconds(20))) << c.Trace();
  EXPECT_NE(c.Trace().find(suc + " successor_accepts=1\n"), std::string::npos) << c.Trace();
}

}  // namespace baton::harness
