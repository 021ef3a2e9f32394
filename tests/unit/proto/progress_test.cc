// The shared progress counters (proto/progress.h): what eipgate-control reads to tell a frozen,
// hung or dead dataplane without asking it.
#include "proto/progress.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace eipgate::proto {
namespace {

class ProgressTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("eipgate-progress-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "progress").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(ProgressTest, PathSitsBesideTheAdminSocket) {
  EXPECT_EQ(progress_path_for("/run/eipgate/dataplane.sock"), "/run/eipgate/progress");
  EXPECT_EQ(progress_path_for("dataplane.sock"), "./progress");
}

TEST_F(ProgressTest, ReaderSeesWhichWorkerStoodStillAndForHowLong) {
  ProgressWriter w;
  ASSERT_EQ(w.create(path_, 3), "");
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);  // root-only, like the sockets beside it
  ProgressReader r(path_);
  auto s = r.sample(1000);
  ASSERT_TRUE(s.present);
  EXPECT_EQ(s.workers, 3u);
  EXPECT_EQ(s.pid, static_cast<uint32_t>(::getpid()));
  EXPECT_EQ(s.stalled_ms, 0u);  // a new file: everybody just moved
  // Workers 0 and 2 keep moving, worker 1 stops.
  for (uint64_t t = 1010; t <= 1400; t += 10) {
    w.store(0, t);
    w.store(2, t * 3);
    s = r.sample(t);
  }
  EXPECT_EQ(s.stalled_ms, 400u);
  EXPECT_EQ(s.stalled_worker, 1u);
  w.store(1, 7);
  s = r.sample(1410);
  EXPECT_EQ(s.stalled_ms, 10u);  // worker 0 and 2 last moved at 1400
  w.store(7, 1);                 // out of range: ignored, no crash
}

TEST_F(ProgressTest, EverybodyFrozenCountsFromTheLastMove) {
  ProgressWriter w;
  ASSERT_EQ(w.create(path_, 2), "");
  ProgressReader r(path_);
  w.store(0, 1);
  w.store(1, 1);
  r.sample(0);
  w.store(0, 2);
  w.store(1, 2);
  EXPECT_EQ(r.sample(50).stalled_ms, 0u);
  EXPECT_EQ(r.sample(300).stalled_ms, 250u);  // SIGSTOP: nothing moves
  EXPECT_EQ(r.sample(1050).stalled_ms, 1000u);
}

TEST_F(ProgressTest, ANewProcessReplacesTheFileAndTheReaderFollows) {
  ProgressReader r(path_);
  EXPECT_FALSE(r.sample(0).present);  // no dataplane yet
  auto w1 = std::make_unique<ProgressWriter>();
  ASSERT_EQ(w1->create(path_, 1), "");
  EXPECT_TRUE(r.sample(10).present);
  EXPECT_EQ(r.sample(510).stalled_ms, 500u);
  // The old process died without cleaning up (kill -9): its file stays, frozen; the new one
  // replaces it (a new inode) and starts fresh.
  ProgressWriter w2;
  ASSERT_EQ(w2.create(path_, 2), "");
  auto s = r.sample(600);
  EXPECT_TRUE(s.present);
  EXPECT_EQ(s.workers, 2u);
  EXPECT_EQ(s.stalled_ms, 0u);
  w1.reset();  // unlinks the path: it was w2's file now, so w2's is gone too
  EXPECT_FALSE(r.sample(700).present);
}

TEST_F(ProgressTest, ForeignOrBrokenFilesAreNotTrusted) {
  {
    std::ofstream f(path_);
    f << "not a progress file, but long enough to hold a header and one worker slot. "
      << std::string(200, 'x');
  }
  ProgressReader r(path_);
  EXPECT_FALSE(r.sample(0).present);  // bad magic
  ASSERT_EQ(::chown(path_.c_str(), 65534, 65534), 0);
  EXPECT_FALSE(r.sample(0).present);
  ProgressWriter w;
  EXPECT_NE(w.create(path_, 0), "");     // bad worker count
  EXPECT_NE(w.create(path_, 1000), "");  // more than kProgressMaxWorkers
  EXPECT_NE(w.create((dir_ / "missing-dir" / "progress").string(), 1), "");
}

}  // namespace
}  // namespace eipgate::proto
