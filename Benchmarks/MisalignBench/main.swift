import MisalignCore
print("bench")
