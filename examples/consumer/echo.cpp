// One message each way between a daemon and a client in one process.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "memlink/shm/transport.hpp"
#include "memlink/shm/version.hpp"

using namespace memlink::shm;
using namespace std::chrono_literals;

int main() {
  const std::string path = "/dev/shm/memlink-consumer-" + std::to_string(::getpid());
  auto daemon = Daemon::create(path, DEFAULT_SEGMENT_SIZE, 1);
  if (!daemon) return std::fprintf(stderr, "daemon: %s\n", daemon.error().message().c_str()), 1;
  auto client = Client::connect(path, 1);
  if (!client) return std::fprintf(stderr, "client: %s\n", client.error().message().c_str()), 1;
  if (auto w = client->write(Priority::High, std::string_view("ping")); !w) return 1;
  auto request = daemon->read();
  if (!request) return std::fprintf(stderr, "daemon read: %s\n", request.error().message().c_str()), 1;
  if (auto w = daemon->write(request->priority, request->payload); !w) return 1;
  auto answer = client->read();
  if (!answer) return std::fprintf(stderr, "client read: %s\n", answer.error().message().c_str()), 1;
  const std::string text(reinterpret_cast<const char*>(answer->payload.data()), answer->payload.size());
  std::printf("memlink-shm %s: sent ping, got %s\n", MEMLINK_SHM_VERSION, text.c_str());
  return text == "ping" ? 0 : 1;
}
