// Round-trip peers, floors first: each is one way of asking another process
// for an answer and getting it. setup() runs before fork, serve() in the
// child until stop(), ping() in the parent. Payload is ignored by the
// payload-less ones (cache line, futex, eventfd), which say so in their name.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace memlink::bench {

class PingPong {
 public:
  virtual ~PingPong() = default;
  // Before fork. False (and error()) if this peer cannot run here.
  virtual bool setup(std::size_t payload) = 0;
  // In the parent, after fork (connect, open).
  virtual bool after_fork() { return true; }
  // In the child: answer every ping until stop() is seen.
  virtual void serve() = 0;
  // One round trip. False if it failed.
  virtual bool ping() = 0;
  // Tells the child to finish (from the parent).
  virtual void stop() = 0;
  virtual void teardown() {}
  const std::string& error() const { return error_; }

 protected:
  std::string error_;
};

// name: cache_line, payload_copy (the floor for moving n bytes), futex, pipe, socketpair, eventfd, tcp, boost_mq,
// zeromq, iceoryx, memlink_spin, memlink_block, memlink_adaptive, memlink_loan (adaptive, through loans and views).
// nullptr if unknown.
std::unique_ptr<PingPong> make_peer(const std::string& name);

// The iceoryx echo process (bench_roundtrip --memlink-iceoryx-echo); 2 when
// built without iceoryx.
int iceoryx_echo_main();

}  // namespace memlink::bench
