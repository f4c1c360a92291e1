#include "peers.hpp"

#include <arpa/inet.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <zmq.h>

#include <atomic>
#include <boost/interprocess/ipc/message_queue.hpp>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "memlink/shm/platform.hpp"
#include "memlink/shm/transport.hpp"

namespace memlink::bench {
namespace {

constexpr std::uint64_t kStop = ~0ULL;

struct alignas(64) Line {
  std::atomic<std::uint64_t> v{0};
};

bool read_full(int fd, void* buf, std::size_t n) {
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    const ssize_t r = ::read(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}
bool write_full(int fd, const void* buf, std::size_t n) {
  const auto* p = static_cast<const char*>(buf);
  while (n > 0) {
    const ssize_t r = ::write(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

// The spinning server of the two floors: each new value in lines[0] is
// answered (after `answer()`, which writes the reply's payload) by storing
// it in lines[1], until kStop.
template <class Answer>
void echo_each_ping(Line* lines, Answer&& answer) {
  std::uint64_t last = 0;
  for (;;) {
    const std::uint64_t v = lines[0].v.load(std::memory_order_acquire);
    if (v == kStop) return;
    if (v != last) {
      last = v;
      answer();
      lines[1].v.store(v, std::memory_order_release);
    } else {
      shm::platform::cpu_relax();
    }
  }
}

// The physical floor: two cache lines bounced between two spinning processes.
class CacheLine final : public PingPong {
 public:
  bool setup(std::size_t) override {
    lines_ = static_cast<Line*>(shared_anonymous(2 * sizeof(Line)));
    if (lines_ == nullptr) return error_ = "mmap failed", false;
    new (&lines_[0]) Line{};
    new (&lines_[1]) Line{};
    return true;
  }
  void serve() override {
    echo_each_ping(lines_, [] {});
  }
  bool ping() override {
    const std::uint64_t s = ++seq_;
    lines_[0].v.store(s, std::memory_order_release);
    while (lines_[1].v.load(std::memory_order_acquire) != s) shm::platform::cpu_relax();
    return true;
  }
  void stop() override { lines_[0].v.store(kStop, std::memory_order_release); }

 private:
  Line* lines_ = nullptr;
  std::uint64_t seq_ = 0;
};

// The floor for moving a payload, in the pattern of memlink_loan's round
// trip: the client stamps 8 bytes of its n-byte buffer, the server copies
// those n bytes into its answer, and the client reads every byte of the
// answer (as a consumer that uses its data, or a checksum, must). The lines
// of the answer move from the server's core to the client's each time; the
// request's unchanged lines stay shared. Against floor_cache_line it says
// what moving n bytes costs on this machine, whatever carries them.
class PayloadCopy final : public PingPong {
 public:
  bool setup(std::size_t payload) override {
    n_ = payload;
    const std::size_t padded = (payload + 63) / 64 * 64;
    auto* mem = static_cast<std::byte*>(shared_anonymous(2 * sizeof(Line) + 2 * padded));
    if (mem == nullptr) return error_ = "mmap failed", false;
    lines_ = reinterpret_cast<Line*>(mem);
    new (&lines_[0]) Line{};
    new (&lines_[1]) Line{};
    request_ = mem + 2 * sizeof(Line);
    answer_ = request_ + padded;
    return true;
  }
  void serve() override {
    echo_each_ping(lines_, [this] {
      if (n_ > 0) std::memcpy(answer_, request_, n_);
    });
  }
  bool ping() override {
    const std::uint64_t s = ++seq_;
    if (n_ >= sizeof s) std::memcpy(request_, &s, sizeof s);
    lines_[0].v.store(s, std::memory_order_release);
    while (lines_[1].v.load(std::memory_order_acquire) != s) shm::platform::cpu_relax();
    return read_all() == s || n_ < sizeof s;
  }
  void stop() override { lines_[0].v.store(kStop, std::memory_order_release); }

 private:
  // Every line of the answer, read; the stamp comes back as the result.
  std::uint64_t read_all() const {
    std::uint64_t sum = 0, stamp = 0;
    for (std::size_t i = sizeof stamp; i + sizeof sum <= n_; i += sizeof sum) {
      std::uint64_t w;
      std::memcpy(&w, answer_ + i, sizeof w);
      sum += w;
    }
    if (n_ >= sizeof stamp) std::memcpy(&stamp, answer_, sizeof stamp);
    benchmark_sink_ = sum;
    return stamp;
  }
  Line* lines_ = nullptr;
  std::byte* request_ = nullptr;
  std::byte* answer_ = nullptr;
  std::size_t n_ = 0;
  std::uint64_t seq_ = 0;
  mutable volatile std::uint64_t benchmark_sink_ = 0;
};

long futex(std::atomic<std::uint32_t>* w, int op, std::uint32_t v) {
  return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(w), op, v, nullptr, nullptr, 0);
}

// The kernel floor: the same, but each side sleeps on a shared futex.
class FutexPingPong final : public PingPong {
 public:
  bool setup(std::size_t) override {
    w_ = static_cast<std::atomic<std::uint32_t>*>(shared_anonymous(128));
    if (w_ == nullptr) return error_ = "mmap failed", false;
    new (&w_[0]) std::atomic<std::uint32_t>(0);
    new (&w_[16]) std::atomic<std::uint32_t>(0);
    return true;
  }
  void serve() override {
    std::uint32_t last = 0;
    for (;;) {
      std::uint32_t v;
      while ((v = w_[0].load(std::memory_order_acquire)) == last) futex(&w_[0], FUTEX_WAIT, last);
      if (v == 0xFFFFFFFFu) return;
      last = v;
      w_[16].store(v, std::memory_order_release);
      futex(&w_[16], FUTEX_WAKE, 1);
    }
  }
  bool ping() override {
    const std::uint32_t s = ++seq_;
    w_[0].store(s, std::memory_order_release);
    futex(&w_[0], FUTEX_WAKE, 1);
    std::uint32_t v;
    while ((v = w_[16].load(std::memory_order_acquire)) != s) futex(&w_[16], FUTEX_WAIT, v);
    return true;
  }
  void stop() override {
    w_[0].store(0xFFFFFFFFu, std::memory_order_release);
    futex(&w_[0], FUTEX_WAKE, 1);
  }

 private:
  std::atomic<std::uint32_t>* w_ = nullptr;
  std::uint32_t seq_ = 0;
};

// Two byte streams (pipes, a socketpair, TCP): write the payload, read it back.
class Stream : public PingPong {
 public:
  void serve() override {
    // The parent's ends, inherited: closed, or the child never sees EOF.
    for (int fd : {in_, out_})
      if (fd >= 0 && fd != child_in_ && fd != child_out_) ::close(fd);
    std::vector<char> buf(n_);
    while (read_full(child_in_, buf.data(), n_) && write_full(child_out_, buf.data(), n_)) {
    }
  }
  bool ping() override { return write_full(out_, buf_.data(), n_) && read_full(in_, buf_.data(), n_); }
  void stop() override {
    ::close(out_);
    out_ = -1;
  }
  void teardown() override {
    for (int fd : {in_, out_})
      if (fd >= 0) ::close(fd);
  }

 protected:
  void sized(std::size_t payload) {
    n_ = std::max<std::size_t>(1, payload);
    buf_.assign(n_, 'x');
  }
  int in_ = -1, out_ = -1, child_in_ = -1, child_out_ = -1;
  std::size_t n_ = 1;
  std::vector<char> buf_;
};

class Pipe final : public Stream {
 public:
  bool setup(std::size_t payload) override {
    sized(payload);
    int a[2], b[2];
    if (::pipe(a) != 0 || ::pipe(b) != 0) return error_ = "pipe failed", false;
    out_ = a[1], child_in_ = a[0], child_out_ = b[1], in_ = b[0];
    return true;
  }
  bool after_fork() override {
    ::close(child_in_);
    ::close(child_out_);
    return true;
  }
};

class SocketPair final : public Stream {
 public:
  bool setup(std::size_t payload) override {
    sized(payload);
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return error_ = "socketpair failed", false;
    in_ = out_ = sv[0];
    child_in_ = child_out_ = sv[1];
    return true;
  }
  bool after_fork() override {
    ::close(child_in_);
    return true;
  }
  void stop() override { ::shutdown(out_, SHUT_WR); }
  void teardown() override { ::close(in_); }
};

class Tcp final : public Stream {
 public:
  bool setup(std::size_t payload) override {
    sized(payload);
    listen_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(listen_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_, 1) != 0 ||
        ::getsockname(listen_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      return error_ = "TCP loopback listen failed", false;
    addr_ = a;
    return true;
  }
  void serve() override {
    const int c = ::accept(listen_, nullptr, nullptr);
    const int one = 1;
    ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    child_in_ = child_out_ = c;
    Stream::serve();
  }
  bool after_fork() override {
    ::close(listen_);
    in_ = out_ = ::socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    ::setsockopt(out_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(out_, reinterpret_cast<sockaddr*>(&addr_), sizeof addr_) != 0) return error_ = "connect failed", false;
    return true;
  }
  void stop() override { ::shutdown(out_, SHUT_WR); }
  void teardown() override { ::close(in_); }

 private:
  int listen_ = -1;
  sockaddr_in addr_{};
};

class EventFd final : public PingPong {
 public:
  bool setup(std::size_t) override {
    to_child_ = ::eventfd(0, 0);
    to_parent_ = ::eventfd(0, 0);
    return to_child_ >= 0 && to_parent_ >= 0 ? true : (error_ = "eventfd failed", false);
  }
  void serve() override {
    std::uint64_t v;
    while (::read(to_child_, &v, 8) == 8 && v < 1000) {
      const std::uint64_t one = 1;
      (void)!::write(to_parent_, &one, 8);
    }
  }
  bool ping() override {
    const std::uint64_t one = 1;
    std::uint64_t v;
    return ::write(to_child_, &one, 8) == 8 && ::read(to_parent_, &v, 8) == 8;
  }
  void stop() override {
    const std::uint64_t stop = 1000;
    (void)!::write(to_child_, &stop, 8);
  }
  void teardown() override {
    ::close(to_child_);
    ::close(to_parent_);
  }

 private:
  int to_child_ = -1, to_parent_ = -1;
};

class BoostMq final : public PingPong {
  using mq = boost::interprocess::message_queue;

 public:
  bool setup(std::size_t payload) override {
    n_ = std::max<std::size_t>(1, payload);
    buf_.assign(n_, 'x');
    const std::string base = "memlink-bench-mq-" + std::to_string(::getpid());
    p2c_ = base + "-p2c", c2p_ = base + "-c2p";
    teardown();
    try {
      mq(boost::interprocess::create_only, p2c_.c_str(), 16, n_);
      mq(boost::interprocess::create_only, c2p_.c_str(), 16, n_);
    } catch (const std::exception& e) {
      return error_ = std::string("boost message_queue: ") + e.what(), false;
    }
    return true;
  }
  void serve() override {
    mq in(boost::interprocess::open_only, p2c_.c_str()), out(boost::interprocess::open_only, c2p_.c_str());
    std::vector<char> buf(n_);
    for (;;) {
      std::size_t got = 0;
      unsigned prio = 0;
      in.receive(buf.data(), n_, got, prio);
      if (got == 0) return;
      out.send(buf.data(), got, 0);
    }
  }
  bool after_fork() override {
    in_.emplace(boost::interprocess::open_only, c2p_.c_str());
    out_.emplace(boost::interprocess::open_only, p2c_.c_str());
    return true;
  }
  bool ping() override {
    out_->send(buf_.data(), n_, 0);
    std::size_t got = 0;
    unsigned prio = 0;
    in_->receive(buf_.data(), n_, got, prio);
    return got == n_;
  }
  void stop() override { out_->send(buf_.data(), 0, 0); }
  void teardown() override {
    in_.reset();
    out_.reset();
    mq::remove(p2c_.c_str());
    mq::remove(c2p_.c_str());
  }

 private:
  std::size_t n_ = 1;
  std::vector<char> buf_;
  std::string p2c_, c2p_;
  std::optional<mq> in_, out_;
};

class ZeroMq final : public PingPong {
 public:
  bool setup(std::size_t payload) override {
    n_ = std::max<std::size_t>(1, payload);
    buf_.assign(n_, 'x');
    endpoint_ = "ipc:///tmp/memlink-bench-zmq-" + std::to_string(::getpid());
    return true;
  }
  void serve() override {
    void* ctx = zmq_ctx_new();
    void* s = zmq_socket(ctx, ZMQ_PAIR);
    if (zmq_bind(s, endpoint_.c_str()) != 0) return;
    std::vector<char> buf(n_);
    for (;;) {
      const int got = zmq_recv(s, buf.data(), n_, 0);
      if (got <= 0) break;
      zmq_send(s, buf.data(), static_cast<std::size_t>(got), 0);
    }
    zmq_close(s);
    zmq_ctx_term(ctx);
  }
  bool after_fork() override {
    ctx_ = zmq_ctx_new();
    s_ = zmq_socket(ctx_, ZMQ_PAIR);
    const int zero = 0;
    zmq_setsockopt(s_, ZMQ_LINGER, &zero, sizeof zero);
    return zmq_connect(s_, endpoint_.c_str()) == 0 ? true : (error_ = "zmq_connect failed", false);
  }
  bool ping() override {
    return zmq_send(s_, buf_.data(), n_, 0) == static_cast<int>(n_) &&
           zmq_recv(s_, buf_.data(), n_, 0) == static_cast<int>(n_);
  }
  void stop() override { zmq_send(s_, buf_.data(), 0, 0); }
  void teardown() override {
    if (s_ != nullptr) zmq_close(s_);
    if (ctx_ != nullptr) zmq_ctx_term(ctx_);
    ::unlink(endpoint_.substr(6).c_str());
  }

 private:
  std::size_t n_ = 1;
  std::vector<char> buf_;
  std::string endpoint_;
  void* ctx_ = nullptr;
  void* s_ = nullptr;
};

// The reference transport: the child is the daemon and echoes on the same
// priority; the parent is a client. Both use the same wait strategy.
// The reference transport. With `loans` (SPEC T-LOAN) the client writes an
// 8-byte counter into a loaned slot and commits the whole payload (the rest
// is what the slot held: building a message in place is the application's
// cost, not the transport's) and reads the echo through a view; the daemon
// echoes each view into a loan (one copy: the two directions are separate
// rings). Checksums, wake-ups and recovery run as for write/read.
class Memlink final : public PingPong {
 public:
  explicit Memlink(shm::WaitStrategy w, bool loans = false) : strategy_(w), loans_(loans) {}
  bool setup(std::size_t payload) override {
    n_ = payload;
    buf_.assign(std::max<std::size_t>(1, n_), std::byte{0x5A});
    path_ = "/dev/shm/memlink-bench-" + std::to_string(::getpid());
    (void)shm::RecoveryManager(path_).cleanup_orphaned_shm();
    stop_ = static_cast<std::atomic<int>*>(shared_anonymous(64));
    if (stop_ == nullptr) return error_ = "mmap failed", false;
    new (stop_) std::atomic<int>(0);
    return true;
  }
  void serve() override {
    shm::DaemonOptions o;
    o.endpoint.wait_strategy = strategy_;
    auto d = shm::Daemon::create(path_, 1 << 20, 1, o);
    if (!d) return;
    std::vector<std::byte> buf(shm::MAX_SLOT_SIZE);
    while (stop_->load(std::memory_order_relaxed) == 0) {
      if (loans_) {
        if (!echo_view(*d)) (void)d->wait(std::chrono::milliseconds(20));
        continue;
      }
      auto m = d->read(buf);
      if (!m) {
        (void)d->wait(std::chrono::milliseconds(20));
        continue;
      }
      (void)d->write_blocking(m->priority, std::span<const std::byte>(buf.data(), m->length), std::chrono::seconds(1));
    }
    d->shutdown();
  }
  bool after_fork() override {
    shm::EndpointOptions o;
    o.wait_strategy = strategy_;
    for (int i = 0; i < 500; ++i) {
      auto c = shm::Client::connect(path_, 1, o);
      if (c) {
        client_.emplace(std::move(c.value()));
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return error_ = "could not connect to the daemon", false;
  }
  bool ping() override {
    if (loans_ ? !send_loan() : !client_->write(shm::Priority::High, std::span<const std::byte>(buf_.data(), n_)))
      return false;
    for (;;) {
      if (loans_ ? receive_view() : client_->read(buf_).ok()) return true;
      if (auto s = client_->wait(std::chrono::seconds(2)); !s && s.code() != shm::ErrorCode::Timeout) return false;
    }
  }
  bool send_loan() {
    auto loan = client_->loan(shm::Priority::High, n_);
    if (!loan) return false;
    const std::uint64_t tag = ++sent_;
    std::memcpy(loan->slot.bytes.data(), &tag, std::min(sizeof tag, n_));
    return client_->commit(*loan, n_).ok();
  }
  bool receive_view() {
    auto v = client_->take_view();
    if (!v) return false;
    (void)client_->release(*v);
    return true;
  }
  static bool echo_view(shm::Daemon& d) {
    auto v = d.take_view();
    if (!v) return false;
    for (;;) {  // a full d2c ring waits for the client, as write_blocking does
      auto loan = d.loan(v->info.priority, v->bytes.size());
      if (loan) {
        if (!v->bytes.empty()) std::memcpy(loan->slot.bytes.data(), v->bytes.data(), v->bytes.size());
        (void)d.commit(*loan, v->bytes.size());
        break;
      }
      if (loan.code() != shm::ErrorCode::Full) break;
    }
    (void)d.release(*v);
    return true;
  }
  void stop() override {
    stop_->store(1, std::memory_order_relaxed);
    (void)client_->signal();
  }
  void teardown() override { client_.reset(); }

 private:
  shm::WaitStrategy strategy_;
  bool loans_ = false;
  std::uint64_t sent_ = 0;
  std::size_t n_ = 0;
  std::vector<std::byte> buf_;
  std::string path_;
  std::atomic<int>* stop_ = nullptr;
  std::optional<shm::Client> client_;
};

}  // namespace

#if defined(MEMLINK_BENCH_HAVE_ICEORYX)
std::unique_ptr<PingPong> make_iceoryx_peer();  // peer_iceoryx.cpp
#else
int iceoryx_echo_main() { return 2; }
#endif

std::unique_ptr<PingPong> make_peer(const std::string& name) {
  if (name == "cache_line") return std::make_unique<CacheLine>();
  if (name == "payload_copy") return std::make_unique<PayloadCopy>();
  if (name == "futex") return std::make_unique<FutexPingPong>();
  if (name == "pipe") return std::make_unique<Pipe>();
  if (name == "socketpair") return std::make_unique<SocketPair>();
  if (name == "eventfd") return std::make_unique<EventFd>();
  if (name == "tcp") return std::make_unique<Tcp>();
  if (name == "boost_mq") return std::make_unique<BoostMq>();
  if (name == "zeromq") return std::make_unique<ZeroMq>();
#if defined(MEMLINK_BENCH_HAVE_ICEORYX)
  if (name == "iceoryx") return make_iceoryx_peer();
#endif
  if (name == "memlink_spin") return std::make_unique<Memlink>(shm::WaitStrategy::Spin);
  if (name == "memlink_block") return std::make_unique<Memlink>(shm::WaitStrategy::Block);
  if (name == "memlink_adaptive") return std::make_unique<Memlink>(shm::WaitStrategy::Adaptive);
  if (name == "memlink_loan") return std::make_unique<Memlink>(shm::WaitStrategy::Adaptive, /*loans=*/true);
  return nullptr;
}

}  // namespace memlink::bench
