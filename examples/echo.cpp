// The README's example, compiled and run by ctest: a daemon process answers
// every request; a client process sends one per priority and checks the
// answers. Exit status 0 when every answer came back.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "memlink/shm/transport.hpp"

using namespace memlink::shm;
using namespace std::chrono_literals;

int run_daemon(const std::string& path, int ready_fd) {
  auto daemon = Daemon::create(path, DEFAULT_SEGMENT_SIZE, /*protocol version*/ 1);
  if (!daemon) {
    std::fprintf(stderr, "daemon: %s\n", daemon.error().message().c_str());
    return 2;
  }
  (void)::write(ready_fd, "r", 1);
  for (int answered = 0; answered < 3;) {
    if (auto s = daemon->wait(5s); !s && s.code() != ErrorCode::Timeout) {
      std::fprintf(stderr, "daemon: %s\n", s.error().message().c_str());
      return 1;
    }
    while (auto msg = daemon->read()) {  // Critical, then High, then Low
      (void)daemon->write_blocking(msg->priority, msg->payload, 1s);  // answer
      ++answered;
    }
  }
  return 0;
}

int run_client(const std::string& path) {
  auto client = Client::connect(path, 1);  // validates the whole segment
  if (!client) {  // CorruptSegment names the field; ProtocolMismatch both versions
    std::fprintf(stderr, "client: %s\n", client.error().message().c_str());
    return 2;
  }
  for (Priority p : kAllPriorities) {
    const std::string request = "ping " + std::string(to_string(p));
    if (auto w = client->write(p, std::string_view(request)); !w) {  // Ok = acknowledged
      std::fprintf(stderr, "client: %s\n", w.error().message().c_str());
      return 1;
    }
    Result<Message> answer = client->read();
    while (!answer && answer.code() == ErrorCode::Empty) {
      if (auto s = client->wait(5s); !s) {
        std::fprintf(stderr, "client: %s\n", s.error().message().c_str());
        return 1;
      }
      answer = client->read();
    }
    if (!answer) return 1;
    const std::string text(reinterpret_cast<const char*>(answer->payload.data()), answer->payload.size());
    std::printf("client: sent \"%s\", got \"%s\"\n", request.c_str(), text.c_str());
    if (text != request) return 1;
  }
  return 0;
}

int main() {
  const std::string path = "/dev/shm/memlink-example-" + std::to_string(::getpid());
  int ready[2];
  if (::pipe(ready) != 0) return 2;
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(run_daemon(path, ready[1]));
  char c;
  if (::read(ready[0], &c, 1) != 1) return 2;
  const int client_status = run_client(path);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return client_status != 0 ? client_status : (WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}
