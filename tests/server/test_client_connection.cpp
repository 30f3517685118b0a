// ClientConnection on real loopback TCP connections: it finds the accepted socket by
// its addresses, reports a connected peer as connected (also with unread request bytes
// queued), and reports the close or reset of the peer.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "server/client_connection.h"

namespace q3vl::server {
namespace {

int port_of(int fd, bool peer) {
  sockaddr_in address{};
  socklen_t length = sizeof address;
  const int rc = peer ? getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length)
                      : getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  EXPECT_EQ(rc, 0);
  return ntohs(address.sin_port);
}

// A listening socket, one connected client and the server's side of that connection.
struct Loopback {
  int listener = -1, client = -1, accepted = -1;

  Loopback() {
    listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    EXPECT_EQ(listen(listener, 4), 0);
    address.sin_port = htons(static_cast<std::uint16_t>(port_of(listener, false)));
    client = socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_EQ(connect(client, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    accepted = accept(listener, nullptr, nullptr);
    EXPECT_GE(accepted, 0);
  }
  ~Loopback() {
    for (const int fd : {listener, client, accepted}) {
      if (fd >= 0) close(fd);
    }
  }
  // The connection as the server's handler sees it (cpp-httplib's Request fields).
  ClientConnection watch() const {
    return ClientConnection("127.0.0.1", port_of(accepted, false), "127.0.0.1", port_of(accepted, true));
  }
};

// peer_closed() polled for up to a second (the FIN crosses loopback at once).
bool closes_soon(const ClientConnection& c) {
  for (int i = 0; i < 100; ++i) {
    if (c.peer_closed()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

TEST(ClientConnection, FindsTheSocketAndSeesTheClientLeave) {
  Loopback link;
  const ClientConnection c = link.watch();
  ASSERT_TRUE(c.found());
  EXPECT_FALSE(c.peer_closed());
  // Unread bytes (a pipelined request) are not a close, and are not consumed.
  ASSERT_EQ(send(link.client, "GET", 3, 0), 3);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(c.peer_closed());
  close(link.client);
  link.client = -1;
  EXPECT_TRUE(closes_soon(c));
  char buffer[8];
  EXPECT_EQ(recv(link.accepted, buffer, sizeof buffer, 0), 3);  // the bytes are still there
}

TEST(ClientConnection, SeesAResetConnection) {
  Loopback link;
  const ClientConnection c = link.watch();
  ASSERT_TRUE(c.found());
  const linger reset{1, 0};  // close() now sends RST
  ASSERT_EQ(setsockopt(link.client, SOL_SOCKET, SO_LINGER, &reset, sizeof reset), 0);
  close(link.client);
  link.client = -1;
  EXPECT_TRUE(closes_soon(c));
}

TEST(ClientConnection, NoMatchingSocketNeverReportsAClose) {
  Loopback link;
  const ClientConnection c("127.0.0.1", port_of(link.accepted, false), "127.0.0.1", 1);
  EXPECT_FALSE(c.found());
  close(link.client);
  link.client = -1;
  EXPECT_FALSE(c.peer_closed());
}

}  // namespace
}  // namespace q3vl::server
