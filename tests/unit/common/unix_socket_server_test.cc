// The root-only unix-socket listener: the socket file is 0600 from the moment it has its name,
// whatever the umask; peers of another uid are refused by SO_PEERCRED even when the file mode
// would let them in; stale files are replaced, live servers and non-sockets are not.
#include "common/unix_socket_server.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

namespace eipgate {
namespace {

class UnixSocketServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/eipgate-uss-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/run/test.sock";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static int connect_to(const std::string& path, int* err) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      *err = errno;
      ::close(fd);
      return -1;
    }
    *err = 0;
    return fd;
  }

  // Accepts the one pending connection (the listener is non-blocking).
  static UnixSocketPeer accept_one(const UnixSocketServer& server) {
    for (int i = 0; i < 1000; ++i) {
      UnixSocketPeer p = server.accept();
      if (p.kind != UnixSocketPeer::Kind::none) return p;
      ::usleep(1000);
    }
    return {};
  }

  std::string dir_;
  std::string path_;
};

TEST_F(UnixSocketServerTest, SocketIs0600UnderAnOpenUmaskAndAppearsOnlyByRename) {
  ASSERT_EQ(::mkdir((dir_ + "/run").c_str(), 0755), 0);
  const int in = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  ASSERT_GE(in, 0);
  ASSERT_GE(::inotify_add_watch(in, (dir_ + "/run").c_str(), IN_CREATE | IN_MOVED_TO), 0);

  const mode_t old_mask = ::umask(0);  // the worst case: bind would create a 0777 file
  UnixSocketServer server;
  UnixSocketError err;
  const bool ok = server.listen(path_, {}, &err);
  ::umask(old_mask);
  ASSERT_TRUE(ok) << err.message;

  struct stat st {};
  ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, ::geteuid());

  // The name test.sock was never created in place (where it would carry the umask's mode until
  // a chmod): it arrived by rename, already 0600.
  bool created_in_place = false;
  bool moved_in = false;
  alignas(inotify_event) char buf[4096];
  for (ssize_t n; (n = ::read(in, buf, sizeof buf)) > 0;) {
    for (ssize_t off = 0; off < n;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
      if (ev->len > 0 && std::string(ev->name) == "test.sock") {
        created_in_place |= (ev->mask & IN_CREATE) != 0;
        moved_in |= (ev->mask & IN_MOVED_TO) != 0;
      }
      off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
    }
  }
  ::close(in);
  EXPECT_FALSE(created_in_place);
  EXPECT_TRUE(moved_in);
  // Nothing of the private directory is left behind.
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir_ + "/run")) {
    names.push_back(e.path().filename().string());
  }
  EXPECT_EQ(names, std::vector<std::string>{"test.sock"});
}

TEST_F(UnixSocketServerTest, MissingParentDirectoriesAreCreated0700) {
  UnixSocketServer server;
  UnixSocketError err;
  ASSERT_TRUE(server.listen(path_, {}, &err)) << err.message;
  struct stat st {};
  ASSERT_EQ(::stat((dir_ + "/run").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
}

TEST_F(UnixSocketServerTest, PeerOfTheAllowedUidIsAdmitted) {
  UnixSocketServer server;
  UnixSocketError err;
  UnixSocketOptions opt;
  opt.allowed_uid = ::geteuid();
  ASSERT_TRUE(server.listen(path_, opt, &err)) << err.message;
  int cerr = 0;
  const int c = connect_to(path_, &cerr);
  ASSERT_GE(c, 0) << std::strerror(cerr);
  const UnixSocketPeer p = accept_one(server);
  ASSERT_EQ(p.kind, UnixSocketPeer::Kind::admitted);
  EXPECT_EQ(p.uid, ::geteuid());
  EXPECT_EQ(p.pid, ::getpid());
  ::close(p.fd);
  ::close(c);
}

// As root (CI): a child that drops to uid 65534 is kept out by the file mode, and — with the
// socket and its directory opened up on purpose — still refused by SO_PEERCRED. As another user:
// the server admits only a uid that is not ours.
TEST_F(UnixSocketServerTest, NonRootPeerIsRefused) {
  UnixSocketServer server;
  UnixSocketError err;
  UnixSocketOptions opt;
  const bool root = ::geteuid() == 0;
  opt.allowed_uid = root ? 0 : ::geteuid() + 1;
  ASSERT_TRUE(server.listen(path_, opt, &err)) << err.message;
  constexpr uid_t kNobody = 65534;

  if (!root) {
    int cerr = 0;
    const int c = connect_to(path_, &cerr);
    ASSERT_GE(c, 0) << std::strerror(cerr);
    const UnixSocketPeer p = accept_one(server);
    EXPECT_EQ(p.kind, UnixSocketPeer::Kind::refused);
    EXPECT_EQ(p.uid, ::geteuid());
    EXPECT_EQ(p.fd, -1);
    UnixSocketServer::close_refused(p, "refused\n");
    char buf[16] = {};
    EXPECT_EQ(::read(c, buf, sizeof buf), 8);
    ::close(c);
    return;
  }

  // A child that drops to nobody: first the file mode keeps it out (exit 10 + errno == EACCES).
  auto as_nobody = [&](bool expect_connect) {
    const pid_t child = ::fork();
    if (child == 0) {
      if (::setresgid(kNobody, kNobody, kNobody) != 0 ||
          ::setresuid(kNobody, kNobody, kNobody) != 0) {
        ::_exit(2);
      }
      int cerr = 0;
      const int c = connect_to(path_, &cerr);
      if (!expect_connect) ::_exit(c < 0 && cerr == EACCES ? 10 : 3);
      if (c < 0) ::_exit(4);
      char buf[64] = {};
      const ssize_t n = ::read(c, buf, sizeof buf);  // the refusal line, then EOF
      ::_exit(n > 0 && std::string(buf, static_cast<size_t>(n)) == "refused\n" ? 11 : 5);
    }
    return child;
  };
  auto exit_code = [](pid_t child) {
    int status = 0;
    ::waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };

  EXPECT_EQ(exit_code(as_nobody(false)), 10);

  // Opened up by mistake: the peer credential check alone must refuse it.
  ASSERT_EQ(::chmod((dir_ + "/run").c_str(), 0755), 0);
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(path_.c_str(), 0666), 0);
  const pid_t child = as_nobody(true);
  const UnixSocketPeer p = accept_one(server);
  EXPECT_EQ(p.kind, UnixSocketPeer::Kind::refused);
  EXPECT_EQ(p.uid, kNobody);
  EXPECT_EQ(p.fd, -1);
  UnixSocketServer::close_refused(p, "refused\n");
  EXPECT_EQ(exit_code(child), 11);
}

TEST_F(UnixSocketServerTest, StaleSocketIsReplacedLiveOneAndNonSocketAreRefused) {
  UnixSocketError err;
  {
    UnixSocketServer first;
    ASSERT_TRUE(first.listen(path_, {}, &err)) << err.message;
    UnixSocketServer second;
    EXPECT_FALSE(second.listen(path_, {}, &err));
    EXPECT_EQ(err.code, EADDRINUSE);
    EXPECT_NE(err.message.find(path_), std::string::npos) << err.message;
  }
  // A file left by a dead process: bound, then closed without unlinking.
  const int dead = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
  ASSERT_EQ(::bind(dead, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
  ::close(dead);
  UnixSocketServer third;
  ASSERT_TRUE(third.listen(path_, {}, &err)) << err.message;
  int cerr = 0;
  const int c = connect_to(path_, &cerr);
  EXPECT_GE(c, 0) << std::strerror(cerr);
  if (c >= 0) ::close(c);
  third.close();
  struct stat st {};
  EXPECT_NE(::lstat(path_.c_str(), &st), 0) << "close() removes its own file";

  ASSERT_EQ(::close(::open(path_.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600)), 0);
  UnixSocketServer fourth;
  EXPECT_FALSE(fourth.listen(path_, {}, &err));
  EXPECT_EQ(err.code, EEXIST);
  EXPECT_TRUE(std::filesystem::is_regular_file(path_)) << "a non-socket is never removed";
}

TEST_F(UnixSocketServerTest, CloseLeavesASuccessorsFileAlone) {
  UnixSocketServer first;
  UnixSocketError err;
  ASSERT_TRUE(first.listen(path_, {}, &err)) << err.message;
  ASSERT_EQ(::unlink(path_.c_str()), 0);
  UnixSocketServer second;
  ASSERT_TRUE(second.listen(path_, {}, &err)) << err.message;
  first.close();
  struct stat st {};
  EXPECT_EQ(::lstat(path_.c_str(), &st), 0);
}

TEST_F(UnixSocketServerTest, PathsThatDoNotFitAreRefusedWithTheirLength) {
  UnixSocketServer server;
  UnixSocketError err;
  EXPECT_FALSE(server.listen(dir_ + "/" + std::string(120, 'x'), {}, &err));
  EXPECT_EQ(err.code, ENAMETOOLONG);
  // Fits sun_path itself, but the private socket in its directory (`<parent>/.XXXXXX/s`) would not.
  const std::string near = dir_ + "/" + std::string(103 - dir_.size() - 1, 'y') + "/a";
  EXPECT_FALSE(server.listen(near, {}, &err));
  EXPECT_EQ(err.code, ENAMETOOLONG);
  EXPECT_NE(err.message.find("shorter path"), std::string::npos) << err.message;
}

TEST_F(UnixSocketServerTest, SeqpacketSocketsAreServedToo) {
  UnixSocketServer server;
  UnixSocketError err;
  UnixSocketOptions opt;
  opt.type = SOCK_SEQPACKET;
  opt.backlog = 1;
  opt.allowed_uid = ::geteuid();
  ASSERT_TRUE(server.listen(path_, opt, &err)) << err.message;
  const int c = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
  ASSERT_EQ(::connect(c, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
  const UnixSocketPeer p = accept_one(server);
  ASSERT_EQ(p.kind, UnixSocketPeer::Kind::admitted);
  int type = 0;
  socklen_t len = sizeof type;
  ASSERT_EQ(::getsockopt(p.fd, SOL_SOCKET, SO_TYPE, &type, &len), 0);
  EXPECT_EQ(type, SOCK_SEQPACKET);
  ::close(p.fd);
  ::close(c);
}

}  // namespace
}  // namespace eipgate
