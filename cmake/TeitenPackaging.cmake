# SPDX-License-Identifier: Apache-2.0
# Debian packages, built with CPack from this CMake tree (see packaging/README.md for why
# CPack and not a debian/ directory): teiten-sensor, teiten-collector and teitenctl.
#   cmake --build build/dev && (cd build/dev && cpack)      -> build/dev/packages/*.deb
# Cross builds (scripts/cross-arm64.sh) set TEITEN_DEB_SHLIBDEPS=OFF and give the shared
# library dependencies found by dpkg-shlibdeps on the native packages instead.
option(TEITEN_DEB_SHLIBDEPS "Compute Depends with dpkg-shlibdeps" ON)
set(TEITEN_DEB_LIB_DEPENDS_SENSOR "" CACHE STRING "Depends on libraries (no shlibdeps)")
set(TEITEN_DEB_LIB_DEPENDS_COLLECTOR "" CACHE STRING "Depends on libraries (no shlibdeps)")
set(TEITEN_DEB_LIB_DEPENDS_CTL "" CACHE STRING "Depends on libraries (no shlibdeps)")

set(_pkg_src ${PROJECT_SOURCE_DIR}/packaging)
set(_pkg_out ${PROJECT_BINARY_DIR}/packaging)
set(_geoip ${PROJECT_SOURCE_DIR}/data/geoip)
file(MAKE_DIRECTORY ${_pkg_out})

# Files that are compressed for the packages (man pages, changelogs): gzip -9n, so that
# the same tree gives byte-identical packages.
find_program(TEITEN_GZIP gzip REQUIRED)
set(_gz_outputs "")
function(teiten_gzip src out)
  add_custom_command(OUTPUT ${out} COMMAND ${TEITEN_GZIP} -9nc ${src} > ${out}
                     DEPENDS ${src} COMMENT "gzip ${out}" VERBATIM)
  set(_gz_outputs ${_gz_outputs} ${out} PARENT_SCOPE)
endfunction()

# name: package; comp: CPack component; prog/section: its program and man section.
foreach(entry "teiten-sensor;sensor;teiten-sensord;8;sbin"
              "teiten-collector;collector;teiten-collectord;8;sbin" "teitenctl;ctl;teitenctl;1;bin")
  list(GET entry 0 pkg)
  list(GET entry 1 comp)
  list(GET entry 2 prog)
  list(GET entry 3 sec)
  teiten_gzip(${PROJECT_SOURCE_DIR}/man/${prog}.${sec} ${_pkg_out}/${prog}.${sec}.gz)
  install(FILES ${_pkg_out}/${prog}.${sec}.gz DESTINATION share/man/man${sec} COMPONENT ${comp})
  teiten_gzip(${_pkg_src}/changelog ${_pkg_out}/${pkg}/changelog.gz)
  install(FILES ${_pkg_out}/${pkg}/changelog.gz DESTINATION share/doc/${pkg} COMPONENT ${comp})
  file(READ ${_pkg_src}/copyright _copyright)
  if(pkg STREQUAL "teiten-sensor")
    file(READ ${_pkg_src}/copyright.geoip _geoip_copyright)
    string(APPEND _copyright "${_geoip_copyright}")
  endif()
  file(WRITE ${_pkg_out}/${pkg}/copyright "${_copyright}")
  install(FILES ${_pkg_out}/${pkg}/copyright DESTINATION share/doc/${pkg} COMPONENT ${comp})
endforeach()
add_custom_target(teiten_package_files ALL DEPENDS ${_gz_outputs})

# Maintainer scripts and conffiles of the two daemon packages, from one template each.
foreach(entry "teiten-sensor;teiten-sensord.service;sensor;sensor.yaml"
              "teiten-collector;teiten-collectord.service;collector;collector.yaml")
  list(GET entry 0 PKG)
  list(GET entry 1 UNIT)
  list(GET entry 2 STATE)
  list(GET entry 3 CONF)
  foreach(script postinst prerm postrm conffiles)
    configure_file(${_pkg_src}/deb/${script}.in ${_pkg_out}/${PKG}/${script} @ONLY
                   FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ
                                    GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
  endforeach()
endforeach()

install(FILES config/sensor.yaml DESTINATION /etc/teiten COMPONENT sensor)
install(FILES systemd/teiten-sensord.service DESTINATION /lib/systemd/system COMPONENT sensor)
install(FILES ${_geoip}/geo-whois-asn-country.mmdb DESTINATION share/teiten/geoip
        COMPONENT sensor)
install(FILES ${_geoip}/ATTRIBUTION ${_geoip}/NRO_LICENSE ${_geoip}/VERSION
        DESTINATION share/doc/teiten-sensor/geoip COMPONENT sensor)
install(FILES config/collector.yaml DESTINATION /etc/teiten COMPONENT collector)
# Alert rules for the operators' Prometheus (sensors and collectors), with their tests.
install(FILES config/prometheus/teiten-alerts.yml config/prometheus/teiten-alerts-test.yml
        DESTINATION share/teiten/prometheus COMPONENT collector)
install(FILES systemd/teiten-collectord.service DESTINATION /lib/systemd/system
        COMPONENT collector)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME teiten)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "Teiten")
set(CPACK_PACKAGE_CONTACT "Teiten developers <maintainers@users.noreply.r-seed-8b908ccb.example>")
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/packages)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL sensor collector ctl)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ${TEITEN_DEB_SHLIBDEPS})
if(CMAKE_CROSSCOMPILING AND CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
  set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE arm64)
endif()

set(_daemon_depends "adduser, init-system-helpers (>= 1.52)")
set(CPACK_DEBIAN_SENSOR_PACKAGE_NAME teiten-sensor)
set(CPACK_DEBIAN_SENSOR_PACKAGE_DEPENDS "${_daemon_depends}")
set(CPACK_DEBIAN_SENSOR_PACKAGE_SUGGESTS "teitenctl")
set(CPACK_DEBIAN_SENSOR_DESCRIPTION
    "Teiten darknet sensor daemon
teiten-sensord captures the unsolicited packets that reach a darknet address
(scans, worms, backscatter), classifies them by port, source country and
scanner fingerprint (Mirai, masscan, ZMap) and counts them in sealed time
buckets. The buckets are spooled on disk and delivered over mutual TLS to a
Teiten collector.
.
This package holds the daemon, its systemd unit, the configuration template
/etc/teiten/sensor.yaml and the default country database (ip-location-db).")
set(CPACK_DEBIAN_COLLECTOR_PACKAGE_NAME teiten-collector)
set(CPACK_DEBIAN_COLLECTOR_PACKAGE_DEPENDS "${_daemon_depends}")
set(CPACK_DEBIAN_COLLECTOR_PACKAGE_SUGGESTS "teitenctl")
set(CPACK_DEBIAN_COLLECTOR_DESCRIPTION
    "Teiten darknet collector daemon
teiten-collectord receives sealed buckets from Teiten sensors over mutually
authenticated HTTPS, stores them in SQLite without losing or double-counting
one, and serves queries, the quarterly reports and a dashboard.
.
This package holds the daemon, its systemd unit and the configuration template
/etc/teiten/collector.yaml.")
set(CPACK_DEBIAN_CTL_PACKAGE_NAME teitenctl)
set(CPACK_DEBIAN_CTL_DESCRIPTION
    "Teiten operators' command-line tool
teitenctl issues the certificates of a Teiten network, pulls counters from
sensors, queries collectors, prints the quarterly reports, and generates or
simulates darknet traffic for tests and demonstrations.")
foreach(comp SENSOR COLLECTOR CTL)
  string(TOLOWER ${comp} _c)
  if(NOT TEITEN_DEB_SHLIBDEPS AND TEITEN_DEB_LIB_DEPENDS_${comp})
    if(CPACK_DEBIAN_${comp}_PACKAGE_DEPENDS)
      string(PREPEND CPACK_DEBIAN_${comp}_PACKAGE_DEPENDS "${TEITEN_DEB_LIB_DEPENDS_${comp}}, ")
    else()
      set(CPACK_DEBIAN_${comp}_PACKAGE_DEPENDS "${TEITEN_DEB_LIB_DEPENDS_${comp}}")
    endif()
  endif()
endforeach()
set(CPACK_DEBIAN_SENSOR_PACKAGE_CONTROL_EXTRA
    "${_pkg_out}/teiten-sensor/postinst;${_pkg_out}/teiten-sensor/prerm;${_pkg_out}/teiten-sensor/postrm;${_pkg_out}/teiten-sensor/conffiles")
set(CPACK_DEBIAN_COLLECTOR_PACKAGE_CONTROL_EXTRA
    "${_pkg_out}/teiten-collector/postinst;${_pkg_out}/teiten-collector/prerm;${_pkg_out}/teiten-collector/postrm;${_pkg_out}/teiten-collector/conffiles")
include(CPack)
