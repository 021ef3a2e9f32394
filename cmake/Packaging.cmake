# Debian package of eipgate (issue 7): install() rules for the binaries, the XDP object, the
# systemd units, boot-time setup and docs, and the CPack DEB settings. Build and package:
#   BUILD_DIR=build-pkg BUILD_TYPE=Release bash scripts/build.sh -DEIPGATE_TESTS=OFF -DEIPGATE_BENCH=OFF
#   cpack --config build-pkg/CPackConfig.cmake -G DEB        # -> build-pkg/eipgate_<ver>_<arch>.deb
# Layout: ami/README.md. Included once at the end of the top-level CMakeLists.txt.

set(_ami ${PROJECT_SOURCE_DIR}/ami)
set(_pkg_gen ${PROJECT_BINARY_DIR}/packaging)
file(MAKE_DIRECTORY ${_pkg_gen}/man)

# Debian policy: programs in /usr/sbin (all of them need root), helpers in /usr/lib/eipgate,
# units in /lib/systemd/system (bookworm), docs in /usr/share/doc/eipgate.
set(CMAKE_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS
    OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
install(TARGETS eipgate-dataplane eipgate-control eipgatectl
        RUNTIME DESTINATION sbin COMPONENT eipgate)
install(FILES ${PROJECT_BINARY_DIR}/bpf/xdp_steer.bpf.o
        DESTINATION lib/eipgate PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ COMPONENT eipgate)
install(PROGRAMS ${_ami}/scripts/eipgate-setup ${_ami}/scripts/eipgate-render-config
        DESTINATION lib/eipgate COMPONENT eipgate)
# eipgate-render-config's package (private modules beside the script that imports them).
file(GLOB _render_modules ${_ami}/scripts/eipgate_render/*.py)
install(FILES ${_render_modules} DESTINATION lib/eipgate/eipgate_render
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ COMPONENT eipgate)
install(FILES ${_ami}/systemd/eipgate-setup.service ${_ami}/systemd/eipgate-dataplane.service
              ${_ami}/systemd/eipgate-control.service
        DESTINATION /lib/systemd/system COMPONENT eipgate)
install(FILES ${_ami}/systemd/60-eipgate.conf DESTINATION lib/sysctl.d COMPONENT eipgate)
install(FILES ${_ami}/systemd/eipgate.tmpfiles DESTINATION lib/tmpfiles.d RENAME eipgate.conf
        COMPONENT eipgate)
install(FILES ${_ami}/debian/eipgate.default DESTINATION /etc/default RENAME eipgate COMPONENT eipgate)
install(FILES ${_ami}/debian/lintian-overrides DESTINATION share/lintian/overrides RENAME eipgate
        COMPONENT eipgate)

# Docs: README (schema of user data and tags), operator guide, example configs, copyright and
# the compressed changelog lintian expects. Man pages gzipped -9n (reproducible).
set(EIPGATE_DEB_VERSION "${PROJECT_VERSION}-1")
configure_file(${_ami}/debian/changelog.in ${_pkg_gen}/changelog.Debian @ONLY)
set(_gz ${_pkg_gen}/changelog.Debian)
set(_mans eipgate-dataplane.8 eipgate-control.8 eipgatectl.8)
foreach(_m IN LISTS _mans ITEMS eipgate-cost.1)
  configure_file(${_ami}/debian/man/${_m} ${_pkg_gen}/man/${_m} COPYONLY)
  list(APPEND _gz ${_pkg_gen}/man/${_m})
endforeach()
foreach(_f IN LISTS _gz)
  execute_process(COMMAND gzip -9nf ${_f} RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "Packaging: gzip ${_f} failed")
  endif()
endforeach()
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_ami}/debian/changelog.in)
install(FILES ${_pkg_gen}/changelog.Debian.gz ${_ami}/debian/copyright ${_ami}/README.md
              ${_ami}/OPERATOR.md
        DESTINATION share/doc/eipgate COMPONENT eipgate)
install(FILES ${_ami}/examples/user-data.example.json
              ${PROJECT_SOURCE_DIR}/dataplane/config/eipgate.example.yaml
        DESTINATION share/doc/eipgate/examples COMPONENT eipgate)
foreach(_m IN LISTS _mans)
  install(FILES ${_pkg_gen}/man/${_m}.gz DESTINATION share/man/man8 COMPONENT eipgate)
endforeach()
# tools/cost installs bin/eipgate-cost (a link into libexec); its man page lives here.
if(EXISTS ${_pkg_gen}/man/eipgate-cost.1.gz)
  install(FILES ${_pkg_gen}/man/eipgate-cost.1.gz DESTINATION share/man/man1 COMPONENT eipgate)
endif()

# --- CPack DEB -----------------------------------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME eipgate)
set(CPACK_PACKAGE_VENDOR "eipgate")
set(CPACK_PACKAGE_CONTACT "eipgate maintainers <maintainers@eipgate.example.org>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "egress NAT for AWS VPCs with fixed Elastic IPs and HA pairs")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "eipgate replaces the managed NAT Gateway: a DPDK user-space NAT that gives the\n\
workloads of each Availability Zone one fixed Elastic IP, tracks every\n\
connection, lets traffic out only to allowed destinations, and runs as an HA\n\
pair whose standby takes over the address, the routes and the connection table.\n\
.\n\
This package holds the dataplane, the HA control daemon, the eipgatectl tool,\n\
the XDP steering program, systemd units and the boot-time setup that renders\n\
the configuration from EC2 user data or instance tags.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/eipgate/eipgate")
# Linked libraries (libcurl, yaml-cpp, libbpf, prometheus-cpp core/pull, ...) come from
# dpkg-shlibdeps; only what is loaded at run time without linking is listed by hand below.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
if(CMAKE_CROSSCOMPILING)
  # Cross-built (arm64 on x86_64, ami/cross/build-deb.sh): dpkg-shlibdeps cannot see the target's
  # libraries (not in the host's dpkg database). ami/cross/shlibdeps.py computes the same list from
  # the sysroot into packaging/shlibdeps.txt after the build; cross-depends.cmake, read by cpack,
  # appends it and refuses to package without it.
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS OFF)
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
    set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE arm64)
  else()
    message(FATAL_ERROR "Packaging: no Debian architecture for ${CMAKE_SYSTEM_PROCESSOR}")
  endif()
  set(EIPGATE_CROSS_SHLIBDEPS ${_pkg_gen}/shlibdeps.txt)
  configure_file(${_ami}/cross/cross-depends.cmake.in ${_pkg_gen}/cross-depends.cmake @ONLY)
  set(CPACK_PROJECT_CONFIG_FILE ${_pkg_gen}/cross-depends.cmake)
endif()
# DPDK loads its drivers as plugins (not seen by dpkg-shlibdeps): ENA (EC2), virtio (the image
# test, KVM), af_xdp / af_packet / tap (single-ENI mode, tests), the ring mempool and the buses.
set(_pmd_deps
    "librte-net-ena23, librte-net-virtio23, librte-net-af-xdp23, librte-net-af-packet23, \
librte-net-tap23, librte-mempool-ring23, librte-bus-pci23, librte-bus-vdev23")
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "${_pmd_deps}, python3, python3-yaml, kmod, iproute2, systemd")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "python3-botocore, ethtool")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${_ami}/debian/conffiles ${_ami}/debian/postinst ${_ami}/debian/prerm ${_ami}/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
set(CPACK_SOURCE_GENERATOR "")
include(CPack)
