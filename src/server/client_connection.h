// ClientConnection: whether the client of a request that is answered in one piece (a
// non-streamed chat completion) is still connected, so its generation can stop when it
// leaves. cpp-httplib 0.11.4 (Debian) gives such handlers no connection state, and its
// Request carries the connection's addresses but not its socket: the socket is found
// once among the process's open descriptors (Linux /proc/self/fd) as the one whose
// local and peer address:port are the request's. peer_closed() then asks the kernel
// without reading: a peer that closed or reset the connection shows as hang-up / error /
// end-of-stream (a request pipelined behind this one is data, not a close).
//
// The socket stays open while the handler runs (cpp-httplib closes it after the
// handler returns), so the descriptor cannot be reused under a ClientConnection that
// lives inside the handler. If no socket matches, peer_closed() is always false (the
// request then runs to its end, as before).
// Thread-safety: const members may be called from any thread.
#pragma once

#include <string>

namespace q3vl::server {

class ClientConnection {
 public:
  ClientConnection(const std::string& local_addr, int local_port, const std::string& remote_addr, int remote_port);

  bool found() const { return fd_ >= 0; }
  // True once the peer closed or reset the connection (no byte is consumed).
  bool peer_closed() const;

 private:
  int fd_ = -1;  // not owned: cpp-httplib's socket for the request
};

}  // namespace q3vl::server
