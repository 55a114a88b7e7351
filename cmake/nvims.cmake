# Finds the Neovims the end-to-end tests run on (cmake/tests.cmake): their
# paths and labels ("nvim-0.11"), the first one being the one the single-Neovim
# tests (valgrind, helptags) use. Relocatable builds are unpacked into
# <build>/nvim at configure time, again when their archive changes; nothing is
# ever downloaded.

# The label of a Neovim from its --version; a build that does not start (its
# runtime libraries missing) stops the configure with what to install.
function(shelf_nvim_label exe out)
  execute_process(COMMAND ${exe} --version RESULT_VARIABLE rc
    OUTPUT_VARIABLE version ERROR_VARIABLE err)
  if(NOT rc EQUAL 0 OR NOT version MATCHES "NVIM v([0-9]+)\\.([0-9]+)")
    message(FATAL_ERROR "shelf: ${exe} does not run (${rc} ${err}). The Neovim builds need "
      "libluajit-5.1-2 lua-luv lua-lpeg libunibilium4 libuv1 libmsgpackc2: scripts/deps.sh test "
      "installs them.")
  endif()
  set(${out} "nvim-${CMAKE_MATCH_1}.${CMAKE_MATCH_2}" PARENT_SCOPE)
endfunction()

# Unpacks one nvim-<version>-linux-x86_64.tar.xz (its one folder is
# nvim-<version>/) unless already unpacked from this very archive.
function(shelf_unpack_nvim archive out)
  get_filename_component(file ${archive} NAME)
  string(REGEX REPLACE "-linux-x86_64\\.tar\\.xz$" "" folder "${file}")
  set(dest ${CMAKE_BINARY_DIR}/nvim)
  set(stamp ${dest}/${folder}.unpacked)
  if(NOT EXISTS ${dest}/${folder}/bin/nvim OR ${archive} IS_NEWER_THAN ${stamp})
    message(NOTICE "shelf: unpacking ${file}")
    file(REMOVE_RECURSE ${dest}/${folder})
    file(ARCHIVE_EXTRACT INPUT ${archive} DESTINATION ${dest})
    if(NOT EXISTS ${dest}/${folder}/bin/nvim)
      message(FATAL_ERROR "shelf: ${file} holds no ${folder}/bin/nvim")
    endif()
    file(TOUCH ${stamp})
  endif()
  set(${out} ${dest}/${folder}/bin/nvim PARENT_SCOPE)
endfunction()

function(shelf_find_nvims paths_out labels_out)
  set(paths "")
  set(labels "")
  if(SHELF_NVIM)
    if(SHELF_NVIM MATCHES "/")
      get_filename_component(exe ${SHELF_NVIM} ABSOLUTE)
    else()
      unset(SHELF_NVIM_FOUND CACHE)
      find_program(SHELF_NVIM_FOUND ${SHELF_NVIM} REQUIRED)
      set(exe ${SHELF_NVIM_FOUND})
    endif()
    set(candidates ${exe})
  else()
    find_program(SHELF_SYSTEM_NVIM nvim REQUIRED)
    set(candidates ${SHELF_SYSTEM_NVIM})
    if(CMAKE_HOST_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
      file(GLOB archives ${SHELF_SHARED}/nvim/nvim-*-linux-x86_64.tar.xz)
      list(SORT archives COMPARE NATURAL)
      foreach(archive ${archives})
        shelf_unpack_nvim(${archive} exe)
        list(APPEND candidates ${exe})
      endforeach()
    endif()
  endif()
  foreach(exe ${candidates})
    shelf_nvim_label(${exe} label)
    if(label IN_LIST labels)
      message(STATUS "shelf: ${exe} is ${label} again; not tested twice")
      continue()
    endif()
    list(APPEND paths ${exe})
    list(APPEND labels ${label})
  endforeach()
  set(${paths_out} ${paths} PARENT_SCOPE)
  set(${labels_out} ${labels} PARENT_SCOPE)
endfunction()
